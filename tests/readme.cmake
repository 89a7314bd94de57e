# The README's C examples compile as written and run: extracted at build time
# (tests/readme/extract.cmake; every ```c block must be a marked example),
# compiled with -Wall -Wextra -Werror against the shared library as a user
# would, and run under mpiexec. readme_main runs on 4 ranks: simulation ranks
# 0 and 1, rank 0 with nothing to send (its destroy must still end the
# stream), and exits non-zero unless every chunk sent was analysed.
set(PXS_README_EXAMPLES readme_main readme_planes)
set(PXS_README_OUT ${CMAKE_CURRENT_BINARY_DIR}/readme)
set(PXS_README_SRCS "")
foreach(ex IN LISTS PXS_README_EXAMPLES)
  list(APPEND PXS_README_SRCS ${PXS_README_OUT}/${ex}.c)
endforeach()
string(REPLACE ";" "\\;" PXS_README_NAMES "${PXS_README_EXAMPLES}")
add_custom_command(OUTPUT ${PXS_README_SRCS}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${PXS_README_OUT}
  COMMAND ${CMAKE_COMMAND} -DREADME=${PROJECT_SOURCE_DIR}/README.md -DOUT=${PXS_README_OUT}
          "-DNAMES=${PXS_README_NAMES}" -P ${CMAKE_CURRENT_LIST_DIR}/readme/extract.cmake
  DEPENDS ${PROJECT_SOURCE_DIR}/README.md ${CMAKE_CURRENT_LIST_DIR}/readme/extract.cmake
  COMMENT "Extracting the README's C examples")
foreach(ex IN LISTS PXS_README_EXAMPLES)
  add_executable(${ex} ${PXS_README_OUT}/${ex}.c)
  target_link_libraries(${ex} PRIVATE proxystream::proxystream)
  target_compile_options(${ex} PRIVATE -Wall -Wextra -Werror)
  set_target_properties(${ex} PROPERTIES C_STANDARD 11 C_STANDARD_REQUIRED ON
    C_EXTENSIONS OFF)
endforeach()
pxs_add_mpi_test(NAME readme.main NP 4 EXE readme_main ARGS 3 OSC sm TIMEOUT 120)
pxs_add_mpi_test(NAME readme.planes NP 3 EXE readme_planes OSC sm TIMEOUT 120)
