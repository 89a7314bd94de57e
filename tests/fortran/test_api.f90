! Every call of the Fortran module, and an error path each, on 3 ranks:
!   rank 0 produces topic 1; rank 1 consumes it, resolves odd chunks, forwards
!   even ones on topic 2 and discards the last; rank 2 (group "g" on topic 2)
!   resolves the forwarded ones. Plus a store round trip over MPI_Send of a
!   proxy between neighbours, and the status constants against the C names.
program test_api
  use, intrinsic :: iso_c_binding
  use, intrinsic :: iso_fortran_env, only: int64, real64, error_unit
  use mpi_f08
  use proxystream
  implicit none
  integer, parameter :: N = 1000, NCHUNK = 6
  integer :: rank, nranks, rc, k, i, got_odd, got_fwd, discarded
  integer(int64) :: nbytes
  type(pxs_store) :: st
  type(pxs_bus) :: bus
  type(pxs_publisher) :: pub
  type(pxs_subscriber) :: sub
  type(pxs_producer) :: prod
  type(pxs_consumer) :: cons
  type(pxs_event) :: ev
  type(pxs_proxy) :: p, q, forged
  type(pxs_proxy_info) :: info
  type(pxs_store) :: nostore
  type(pxs_bus) :: nobus
  type(pxs_publisher) :: nopub
  type(pxs_subscriber) :: nosub
  type(pxs_producer) :: noprod
  type(pxs_consumer) :: nocons
  real(real64) :: a(7, 5), b(7, 5), small(3)
  integer :: chunk(N), back(N), meta(1), big(50)
  character(:), allocatable :: txt

  call MPI_Init()
  call MPI_Comm_rank(MPI_COMM_WORLD, rank)
  call MPI_Comm_size(MPI_COMM_WORLD, nranks)
  call check(nranks == 3, 'needs 3 ranks')

  ! ---- constants and strings
  call check(pxs_errname(PXS_OK) == 'PXS_OK', 'PXS_OK')
  call check(pxs_errname(PXS_END) == 'PXS_END', 'PXS_END')
  call check(pxs_errname(PXS_TIMEOUT) == 'PXS_TIMEOUT', 'PXS_TIMEOUT')
  call check(pxs_errname(PXS_ERR_INVALID) == 'PXS_ERR_INVALID', 'INVALID')
  call check(pxs_errname(PXS_ERR_NOMEM) == 'PXS_ERR_NOMEM', 'NOMEM')
  call check(pxs_errname(PXS_ERR_AGAIN) == 'PXS_ERR_AGAIN', 'AGAIN')
  call check(pxs_errname(PXS_ERR_TIMEDOUT) == 'PXS_ERR_TIMEDOUT', 'TIMEDOUT')
  call check(pxs_errname(PXS_ERR_STALE) == 'PXS_ERR_STALE', 'STALE')
  call check(pxs_errname(PXS_ERR_CORRUPT) == 'PXS_ERR_CORRUPT', 'CORRUPT')
  call check(pxs_errname(PXS_ERR_TOO_BIG) == 'PXS_ERR_TOO_BIG', 'TOO_BIG')
  call check(pxs_errname(PXS_ERR_CLOSED) == 'PXS_ERR_CLOSED', 'CLOSED')
  call check(pxs_errname(PXS_ERR_MPI) == 'PXS_ERR_MPI', 'MPI')
  call check(pxs_errname(PXS_ERR_NOTSUP) == 'PXS_ERR_NOTSUP', 'NOTSUP')
  call check(pxs_errname(PXS_ERR_BUSY) == 'PXS_ERR_BUSY', 'BUSY')
  call check(pxs_errname(PXS_ERR_NOT_FOUND) == 'PXS_ERR_NOT_FOUND', 'NOT_FOUND')
  call check(pxs_errname(PXS_ERR_TRUNC) == 'PXS_ERR_TRUNC', 'TRUNC')
  call check(len(pxs_strerror(PXS_ERR_STALE)) > 0, 'strerror')
  call check(c_sizeof(p) == 64, 'proxy is 64 bytes')
  call check(c_sizeof(ev) == 184, 'event is sizeof(pxs_event_t)')

  ! ---- store: put, proxy by MPI_Send, decode, resolve, stale, keep+evict
  ! collective create errors fail on every rank together
  call pxs_store_create(nostore, MPI_COMM_WORLD, arena_bytes=huge(0_int64), ierr=rc)
  call check(rc == PXS_ERR_NOMEM, 'store_create with an 8 EiB arena NOMEM')
  call check(len(pxs_last_error_detail()) > 0, 'store_create detail')
  call pxs_bus_create(nobus, MPI_COMM_WORLD, subscribe=[1], &
       groups=['a-group-name-longer-than-31-characters'], ierr=rc)
  call check(rc == PXS_ERR_INVALID, 'bus_create with a too long group name INVALID')
  ! local calls on unset handles give PXS_ERR_INVALID
  call pxs_bus_publisher(nobus, nopub, ierr=rc)
  call check(rc == PXS_ERR_INVALID, 'bus_publisher INVALID')
  call pxs_bus_subscriber(nobus, nosub, ierr=rc)
  call check(rc == PXS_ERR_INVALID, 'bus_subscriber INVALID')
  call pxs_producer_create(noprod, nostore, nopub, ierr=rc)
  call check(rc == PXS_ERR_INVALID, 'producer_create INVALID')
  call pxs_producer_flush(noprod, ierr=rc)
  call check(rc == PXS_ERR_INVALID, 'producer_flush INVALID')
  call pxs_consumer_create(nocons, nostore, nosub, ierr=rc)
  call check(rc == PXS_ERR_INVALID, 'consumer_create INVALID')
  call check(.not. pxs_consumer_next(nocons, ev, ierr=rc) .and. rc == PXS_ERR_INVALID, &
       'consumer_next INVALID')
  call pxs_producer_destroy(noprod)                                   ! NULL: no-op
  call pxs_consumer_destroy(nocons)
  call pxs_bus_destroy(nobus)

  call pxs_store_create(st, MPI_COMM_WORLD, arena_bytes=4194304_int64, ierr=rc)
  call check(rc == PXS_OK, 'store_create')
  a = reshape([(real(i + 100 * rank, real64), i = 1, 35)], [7, 5])
  call pxs_store_put(st, a, p, resolves=1, checksum=.true.)
  ! the proxy travels as 64 MPI_BYTEs around the ring 0 -> 1 -> 2 -> 0
  if (rank == 0) call MPI_Send(p, PXS_PROXY_SIZE, MPI_BYTE, 1, 1, MPI_COMM_WORLD)
  call MPI_Recv(q, PXS_PROXY_SIZE, MPI_BYTE, modulo(rank + 2, 3), 1, MPI_COMM_WORLD, &
       MPI_STATUS_IGNORE)
  if (rank /= 0) call MPI_Send(p, PXS_PROXY_SIZE, MPI_BYTE, modulo(rank + 1, 3), 1, &
       MPI_COMM_WORLD)
  call pxs_proxy_validate(q)
  call pxs_proxy_decode(q, info)
  call check(info%size == 35 * 8 .and. info%owner == modulo(rank + 2, 3), 'decode')
  call pxs_store_resolve(st, q, small, nbytes, ierr=rc)           ! too small: nothing consumed
  call check(rc == PXS_ERR_TRUNC .and. nbytes == 280, 'resolve TRUNC')
  call pxs_store_resolve(st, q, b, nbytes)
  call check(nbytes == 280, 'resolve size')
  call check(all(b == reshape([(real(i + 100 * modulo(rank + 2, 3), real64), i = 1, 35)], [7, 5])), &
       'resolved values')
  call pxs_store_resolve(st, q, b, ierr=rc)                        ! budget 1 used up
  call check(rc == PXS_ERR_STALE, 'second resolve STALE')
  call check(len(pxs_last_error_detail()) > 0, 'STALE detail')
  txt = pxs_proxy_to_text(q)
  call check(txt(1:5) == 'pxs2:' .and. len(txt) == PXS_PROXY_TEXT_LEN - 1, 'to_text')
  call pxs_proxy_from_text('  '//txt//' ', forged)
  call check(all(forged%bytes == q%bytes), 'from_text round trip')
  call pxs_proxy_from_text('pxs2:zz', forged, ierr=rc)
  call check(rc == PXS_ERR_CORRUPT, 'from_text CORRUPT')
  ! forged proxy: one byte changed -> CORRUPT, never bytes
  forged = q
  forged%bytes(25) = not(forged%bytes(25))
  call pxs_store_resolve(st, forged, b, ierr=rc)
  call check(rc == PXS_ERR_CORRUPT, 'forged proxy CORRUPT')
  call check(len(pxs_last_error_detail()) > 0, 'CORRUPT detail')
  call pxs_proxy_validate(forged, ierr=rc)
  call check(rc == PXS_ERR_CORRUPT, 'validate CORRUPT')
  ! a non-contiguous section is refused by the binding with its own detail
  call pxs_store_put(st, a(1:7:2, :), p, ierr=rc)
  call check(rc == PXS_ERR_INVALID, 'non-contiguous INVALID')
  call check(index(pxs_last_error_detail(), 'not contiguous') > 0, 'non-contiguous detail')
  ! keep until evicted: resolvable twice, gone after evict
  call pxs_store_put(st, a(:, 2:3), p, keep=.true.)                ! contiguous section
  call pxs_store_resolve(st, p, small(1:1), ierr=rc)
  call check(rc == PXS_ERR_TRUNC, 'keep TRUNC')
  call pxs_store_resolve(st, p, b(:, 1:2))
  call pxs_store_resolve(st, p, b(:, 3:4))
  call check(all(b(:, 1:2) == a(:, 2:3)) .and. all(b(:, 3:4) == a(:, 2:3)), 'keep values')
  call pxs_store_evict(st, p)
  call pxs_store_resolve(st, p, b, ierr=rc)
  call check(rc == PXS_ERR_STALE, 'resolve after evict STALE')
  call pxs_store_evict(st, forged, ierr=rc)
  call check(rc == PXS_ERR_CORRUPT, 'evict forged CORRUPT')

  ! ---- bus with a group name, producer, consumer
  select case (rank)
  case (0)
     call pxs_bus_create(bus, MPI_COMM_WORLD, publish=[1], ierr=rc)
  case (1)
     call pxs_bus_create(bus, MPI_COMM_WORLD, publish=[2], subscribe=[1], ierr=rc)
  case default
     call pxs_bus_create(bus, MPI_COMM_WORLD, subscribe=[2], groups=['g'], prefetch=[2], &
          slots=64, batch=1, send_timeout=30.0_c_double, ierr=rc)
  end select
  call check(rc == PXS_OK, 'bus_create')
  call pxs_bus_publisher(bus, pub)
  call pxs_bus_subscriber(bus, sub)
  if (rank == 2) then
     call pxs_consumer_create(cons, st, sub)
     call check(.not. pxs_consumer_next(cons, ev, timeout=0.0_c_double, ierr=rc), 'poll')
     call check(rc == PXS_TIMEOUT, 'poll before any send gives PXS_TIMEOUT')
  end if
  call MPI_Barrier(MPI_COMM_WORLD)

  if (rank == 0) then
     call pxs_producer_create(prod, st, pub, topics=[1], resolves=1, checksum=.true.)
     do k = 0, NCHUNK - 1
        chunk = [(k * N + i, i = 1, N)]
        meta(1) = k
        call pxs_producer_send(prod, 1, chunk, meta=meta, proxy=p)
        call pxs_proxy_decode(p, info)
        call check(info%size == 4 * N .and. info%seq == k, 'send proxy fields')
        if (k == 2) call pxs_producer_flush(prod)
     end do
     call pxs_producer_send(prod, 1, chunk, meta=big, ierr=rc)     ! 200 B of metadata
     call check(rc == PXS_ERR_TOO_BIG, 'meta TOO_BIG')
     call pxs_producer_send(prod, 3, chunk, ierr=rc)                ! not an owned topic
     call check(rc == PXS_ERR_NOT_FOUND, 'topic NOT_FOUND')
     call pxs_producer_close_topic(prod, 3, ierr=rc)
     call check(rc == PXS_ERR_NOT_FOUND, 'close_topic NOT_FOUND')
     call pxs_producer_close_topic(prod, 1)
     call pxs_producer_send(prod, 1, chunk, ierr=rc)
     call check(rc == PXS_ERR_CLOSED, 'send after close CLOSED')
     call pxs_producer_close_topic(prod, 1, ierr=rc)
     call check(rc == PXS_ERR_CLOSED, 'second close CLOSED')
     call pxs_producer_destroy(prod)
  else if (rank == 1) then
     call pxs_consumer_create(cons, st, sub)
     call pxs_producer_create(prod, pxs_store(), pub, topics=[2])  ! forward only
     got_odd = 0
     discarded = 0
     do while (pxs_consumer_next(cons, ev))
        call check(ev%topic == 1 .and. ev%producer == 0 .and. ev%meta_len == 4, 'event fields')
        meta = transfer(ev%meta(1:4), meta)
        call check(meta(1) == ev%seq, 'meta is the seq')
        if (ev%seq == NCHUNK - 1) then
           forged = ev%proxy
           ev%proxy%bytes(40) = not(ev%proxy%bytes(40))
           call pxs_consumer_discard(cons, ev, ierr=rc)
           call check(rc == PXS_ERR_CORRUPT, 'discard forged CORRUPT')
           ev%proxy = forged
           call pxs_consumer_discard(cons, ev)
           discarded = discarded + 1
        else if (mod(ev%seq, 2_int64) == 0) then
           call pxs_producer_send_proxy(prod, 2, ev%proxy, meta=meta)
        else
           call pxs_consumer_resolve(cons, ev, back, nbytes)
           call check(nbytes == 4 * N .and. all(back == [(meta(1) * N + i, i = 1, N)]), 'resolve')
           got_odd = got_odd + 1
        end if
     end do
     call check(got_odd == 2 .and. discarded == 1, 'rank 1 counts')
     forged = ev%proxy
     forged%bytes(1) = 99
     call pxs_producer_send_proxy(prod, 2, forged, ierr=rc)
     call check(rc == PXS_ERR_CORRUPT, 'send_proxy forged CORRUPT')
     call pxs_producer_destroy(prod)                                ! END on topic 2
     call pxs_consumer_destroy(cons)
  else
     got_fwd = 0
     do
        if (.not. pxs_consumer_next(cons, ev, ierr=rc)) exit
        call pxs_consumer_resolve(cons, ev, back)
        meta = transfer(ev%meta(1:4), meta)
        call check(mod(meta(1), 2) == 0 .and. all(back == [(meta(1) * N + i, i = 1, N)]), &
             'forwarded resolve')
        call pxs_consumer_resolve(cons, ev, back, ierr=rc)
        call check(rc == PXS_ERR_STALE, 'forwarded second resolve STALE')
        got_fwd = got_fwd + 1
     end do
     call check(rc == PXS_END .and. got_fwd == 3, 'rank 2 got 3 forwarded, then END')
     call check(.not. pxs_consumer_next(cons, ev, ierr=rc) .and. rc == PXS_END, 'END again')
     call pxs_consumer_destroy(cons)
  end if

  call pxs_bus_destroy(bus)
  call pxs_store_destroy(st)
  call pxs_store_destroy(st)                                         ! NULL: no-op
  if (rank == 0) print '(a)', 'fortran api: ok'
  call MPI_Finalize()

contains

  subroutine check(cond, what)
    logical, intent(in) :: cond
    character(*), intent(in) :: what
    if (.not. cond) then
       write (error_unit, '(a,i0,a)') '[rank ', rank, '] FAILED: '//what//' (detail: '// &
            pxs_last_error_detail()//')'
       flush (error_unit)
       call MPI_Abort(MPI_COMM_WORLD, 1)
    end if
  end subroutine check

end program test_api
