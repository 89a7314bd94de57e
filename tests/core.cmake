# Core: status codes, utilities, proxy format, fuzz target replay.
pxs_add_unit_test(NAME status SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_status.c)
pxs_add_unit_test(NAME proxy.decode SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_proxy.c)
pxs_add_unit_test(NAME env SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_env.c)
pxs_add_unit_test(NAME backoff SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_backoff.c)

# The decode fuzzer's corpus is replayed by ctest with any compiler...
pxs_test_exe(fuzz_proxy_decode_replay
  ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_proxy_decode.c
  ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/replay_main.c)
add_test(NAME unit.fuzz.proxy_decode.replay
  COMMAND fuzz_proxy_decode_replay ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus)
set_tests_properties(unit.fuzz.proxy_decode.replay PROPERTIES LABELS "unit;fuzz" TIMEOUT 60)
# the named seeds: valid_* are accepted, v1_* refused (proxy format version 2)
pxs_test_exe(fuzz_proxy_corpus_check ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus_check.c)
add_test(NAME unit.fuzz.proxy_corpus
  COMMAND fuzz_proxy_corpus_check ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus)
set_tests_properties(unit.fuzz.proxy_corpus PROPERTIES LABELS "unit;fuzz" TIMEOUT 60)

# ...and, with clang (-DPXS_FUZZ=ON), a real libFuzzer binary; .ci/run runs it
# for a bounded time (-max_total_time).
if(PXS_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "PXS_FUZZ needs clang (CC=clang)")
  endif()
  # The decoder's own sources are compiled into the fuzzer so that libFuzzer's
  # coverage instrumentation sees them.
  add_executable(fuzz_proxy_decode ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_proxy_decode.c
    ${PROJECT_SOURCE_DIR}/src/proxy/proxy.c ${PROJECT_SOURCE_DIR}/src/proxy/crc32c.c
    ${PROJECT_SOURCE_DIR}/src/util/status.c ${PROJECT_SOURCE_DIR}/src/util/util.c
    ${PROJECT_SOURCE_DIR}/src/util/options.c)
  target_include_directories(fuzz_proxy_decode PRIVATE ${PROJECT_SOURCE_DIR}/include
    ${PROJECT_SOURCE_DIR}/src)
  target_compile_definitions(fuzz_proxy_decode PRIVATE _GNU_SOURCE PXS_BUILDING)
  target_compile_options(fuzz_proxy_decode PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_options(fuzz_proxy_decode PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_proxy_decode PRIVATE MPI::MPI_C Threads::Threads)
endif()

# The batch scripts are not run here (no Slurm), but they must parse.
add_test(NAME unit.scripts.syntax COMMAND bash -c
  "for f in ${PROJECT_SOURCE_DIR}/slurm/*.sbatch ${PROJECT_SOURCE_DIR}/*.sh ${PROJECT_SOURCE_DIR}/.ci/run ${PROJECT_SOURCE_DIR}/apps/*.sh; do bash -n \"$f\" || exit 1; done")
set_tests_properties(unit.scripts.syntax PROPERTIES LABELS unit TIMEOUT 30)

# No tracked text file (README, docs, headers, sources, scripts) points at a
# file or a docs/DESIGN.md section that does not exist.
add_test(NAME unit.docs.refs
  COMMAND bash ${PROJECT_SOURCE_DIR}/tests/tools/check-refs.sh ${PROJECT_SOURCE_DIR})
set_tests_properties(unit.docs.refs PROPERTIES LABELS unit TIMEOUT 60)

# The README's status and environment tables agree with PXS_STATUS_LIST and
# the option table (src/util/options.c), both ways.
pxs_add_unit_test(NAME readme.tables SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/unit/test_readme_tables.c
  ARGS ${PROJECT_SOURCE_DIR}/README.md)
# Issue 12: the MPI library's name and the window remedy text follow the
# implementation <mpi.h> belongs to (one rank, once per build).
pxs_add_mpi_test(NAME core.mpiimpl NP 1 OSC sm TIMEOUT 60
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/mpi/test_mpi_impl.c)
