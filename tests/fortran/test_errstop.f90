! Without ierr a failure prints the call, the code and the detail, then
! `error stop`s: resolve a forged proxy (ctest matches the printed line).
program test_errstop
  use mpi_f08
  use proxystream
  implicit none
  type(pxs_store) :: st
  type(pxs_proxy) :: p
  integer :: buf(4)
  call MPI_Init()
  call pxs_store_create(st, MPI_COMM_WORLD)
  call pxs_store_put(st, buf, p)
  p%bytes(30) = not(p%bytes(30))
  call pxs_store_resolve(st, p, buf)          ! no ierr: must stop here
  print '(a)', 'NOT REACHED'
  call MPI_Finalize()
end program test_errstop
