! 2-D heat equation streamed to in-situ analysis with proxystream.
!
! Ranks 0..S-1 simulate an NX x NY periodic grid (rows split over them, halo
! exchange with MPI_Sendrecv); every EVERY steps each sends its slab on topic 1
! with metadata (step, rank, rows, slab sum). The last A ranks (A = 1 for up to
! 3 ranks, else 2) analyse: a work-sharing group "analysis" on topic 1, so each
! slab goes to one of them. Each resolves the slab into a 2-D Fortran array,
! checks its sum against the metadata, and keeps per-snapshot min/max/sum.
! At the end the analysis ranks combine, print min/max/mean per snapshot and
! check deterministically that every slab arrived and the total heat is
! conserved (the periodic explicit scheme conserves it up to rounding).
!   usage: mpirun -n 4 heat        (exit status 1 on any failed check)
program heat
  use, intrinsic :: iso_c_binding, only: c_double
  use, intrinsic :: iso_fortran_env, only: int64, real64, error_unit
  use mpi_f08
  use proxystream
  implicit none
  integer, parameter :: NX = 64, NY = 48, NSTEPS = 200, EVERY = 20
  integer, parameter :: NSNAP = NSTEPS / EVERY + 1, TOPIC = 1
  real(real64), parameter :: ALPHA = 0.2_real64
  integer :: rank, nranks, nana, nsim, color, me, rows, step, i, j, s, ok, allok
  type(MPI_Comm) :: part
  type(pxs_store) :: st
  type(pxs_bus) :: bus
  type(pxs_publisher) :: pub
  type(pxs_subscriber) :: sub
  type(pxs_producer) :: prod
  type(pxs_consumer) :: cons
  type(pxs_event) :: ev
  real(real64), allocatable :: u(:, :), un(:, :), slab(:, :)
  real(real64) :: meta(4), heat0, vmin(NSNAP), vmax(NSNAP), vsum(NSNAP)
  real(real64) :: gmin(NSNAP), gmax(NSNAP), gsum(NSNAP)
  integer :: nslab(NSNAP), gslab(NSNAP)
  integer(int64) :: nbytes

  call MPI_Init()
  call MPI_Comm_rank(MPI_COMM_WORLD, rank)
  call MPI_Comm_size(MPI_COMM_WORLD, nranks)
  nana = merge(1, 2, nranks <= 3)
  nsim = nranks - nana
  if (nsim < 1 .or. mod(NY, max(nsim, 1)) /= 0) then
     if (rank == 0) write (error_unit, '(a)') 'heat: run with 2..8 ranks (NY=48 rows split evenly)'
     call MPI_Abort(MPI_COMM_WORLD, 2)
  end if
  color = merge(0, 1, rank < nsim)                  ! 0: simulation, 1: analysis
  call MPI_Comm_split(MPI_COMM_WORLD, color, rank, part)
  call MPI_Comm_rank(part, me)

  ! store and bus: collective over every rank
  call pxs_store_create(st, MPI_COMM_WORLD, arena_bytes=4194304_int64)
  if (color == 0) then
     call pxs_bus_create(bus, MPI_COMM_WORLD, publish=[TOPIC])
  else
     call pxs_bus_create(bus, MPI_COMM_WORLD, subscribe=[TOPIC], groups=['analysis'])
  end if
  call pxs_bus_publisher(bus, pub)
  call pxs_bus_subscriber(bus, sub)

  ! initial total heat: a hot 16 x 12 block at 1.0, the rest 0
  heat0 = 16.0_real64 * 12.0_real64
  ok = 1
  if (color == 0) then
     rows = NY / nsim
     allocate (u(NX, 0:rows + 1), un(NX, rows))
     u = 0
     do j = 1, rows
        if (me * rows + j > 18 .and. me * rows + j <= 30) u(25:40, j) = 1
     end do
     call pxs_producer_create(prod, st, pub)
     do step = 0, NSTEPS
        if (mod(step, EVERY) == 0) then
           meta = [real(step, real64), real(me, real64), real(rows, real64), sum(u(:, 1:rows))]
           call pxs_producer_send(prod, TOPIC, u(:, 1:rows), meta=meta)
        end if
        if (step == NSTEPS) exit
        call halo(u, rows)
        do j = 1, rows
           do i = 1, NX
              un(i, j) = u(i, j) + ALPHA * (u(modulo(i, NX) + 1, j) + u(modulo(i - 2, NX) + 1, j) &
                   + u(i, j + 1) + u(i, j - 1) - 4 * u(i, j))
           end do
        end do
        u(:, 1:rows) = un
     end do
     call pxs_producer_destroy(prod)                ! END on topic 1
  else
     vmin = huge(1.0_real64)
     vmax = -huge(1.0_real64)
     vsum = 0
     nslab = 0
     call pxs_consumer_create(cons, st, sub)
     do while (pxs_consumer_next(cons, ev))
        meta = transfer(ev%meta(1:32), meta)
        s = nint(meta(1)) / EVERY + 1
        allocate (slab(NX, nint(meta(3))))
        call pxs_consumer_resolve(cons, ev, slab, nbytes)   ! bytes pulled from the producer
        if (nbytes /= 8 * size(slab, kind=int64) .or. abs(sum(slab) - meta(4)) > 1e-12_real64 * heat0) then
           write (error_unit, '(a,i0,a,i0)') 'heat: slab checksum mismatch, step ', nint(meta(1)), &
                ' rank ', ev%producer
           ok = 0
        end if
        vmin(s) = min(vmin(s), minval(slab))
        vmax(s) = max(vmax(s), maxval(slab))
        vsum(s) = vsum(s) + sum(slab)
        nslab(s) = nslab(s) + 1
        deallocate (slab)
     end do
     call pxs_consumer_destroy(cons)
     call MPI_Reduce(vmin, gmin, NSNAP, MPI_DOUBLE_PRECISION, MPI_MIN, 0, part)
     call MPI_Reduce(vmax, gmax, NSNAP, MPI_DOUBLE_PRECISION, MPI_MAX, 0, part)
     call MPI_Reduce(vsum, gsum, NSNAP, MPI_DOUBLE_PRECISION, MPI_SUM, 0, part)
     call MPI_Reduce(nslab, gslab, NSNAP, MPI_INTEGER, MPI_SUM, 0, part)
     if (me == 0) then
        print '(a,i0,a,i0,a,i0,a)', 'heat: ', nsim, ' simulation rank(s), ', nana, &
             ' analysis rank(s), ', NX * NY, ' cells'
        do s = 1, NSNAP
           print '(a,i4,a,i2,a,f9.6,a,f9.6,a,f9.6,a,f12.6)', 'step', (s - 1) * EVERY, &
                '  slabs', gslab(s), '  min', gmin(s), '  max', gmax(s), &
                '  mean', gsum(s) / (NX * NY), '  heat', gsum(s)
           if (gslab(s) /= nsim .or. abs(gsum(s) - heat0) > 1e-9_real64 * heat0) ok = 0
        end do
        print '(a,a)', 'heat: total heat conserved, every slab received: ', merge('yes', 'NO ', ok == 1)
     end if
  end if

  call pxs_bus_destroy(bus)
  call pxs_store_destroy(st)
  call MPI_Allreduce(ok, allok, 1, MPI_INTEGER, MPI_MIN, MPI_COMM_WORLD)
  call MPI_Comm_free(part)
  call MPI_Finalize()
  if (allok /= 1) error stop 1

contains

  ! periodic halo rows between the simulation ranks
  subroutine halo(v, n)
    integer, intent(in) :: n
    real(real64), intent(inout) :: v(NX, 0:n + 1)
    integer :: up, down
    up = modulo(me + 1, nsim)
    down = modulo(me - 1, nsim)
    call MPI_Sendrecv(v(:, n), NX, MPI_DOUBLE_PRECISION, up, 7, v(:, 0), NX, &
         MPI_DOUBLE_PRECISION, down, 7, part, MPI_STATUS_IGNORE)
    call MPI_Sendrecv(v(:, 1), NX, MPI_DOUBLE_PRECISION, down, 8, v(:, n + 1), NX, &
         MPI_DOUBLE_PRECISION, up, 8, part, MPI_STATUS_IGNORE)
  end subroutine halo

end program heat
