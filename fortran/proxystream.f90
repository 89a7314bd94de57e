!> Fortran 2008 binding of proxystream (module `proxystream`).
!>
!> A thin layer over the C API (include/proxystream/*.h): every procedure
!> calls one C function (directly, or through fortran/shim.c, which converts
!> MPI_Fint communicators, C descriptors of `type(*), dimension(..)` buffers and
!> absent optionals). Handles are small derived types holding the C pointer;
!> `type(pxs_proxy)` is the 64-byte proxy itself and can be sent with
!> `MPI_Send(p, 64, MPI_BYTE, ...)`.
!>
!> Errors: every procedure ends with an optional `ierr`. Present: it gets the
!> status (PXS_OK, PXS_END, PXS_TIMEOUT or a negative PXS_ERR_*), and nothing
!> stops. Absent: a failure (< 0) prints the call, pxs_strerror and
!> pxs_last_error_detail() to stderr and does `error stop`.
!> Design: docs/DESIGN.md, section "Fortran and C++ bindings".
module proxystream
  use, intrinsic :: iso_c_binding
  use, intrinsic :: iso_fortran_env, only: error_unit, int64
  use mpi_f08, only: MPI_Comm
  implicit none
  private

  ! Status codes: the values of include/proxystream/status.h.
  integer, parameter, public :: PXS_OK = 0, PXS_END = 1, PXS_TIMEOUT = 2
  integer, parameter, public :: PXS_ERR_INVALID = -1, PXS_ERR_NOMEM = -2, &
       PXS_ERR_AGAIN = -3, PXS_ERR_TIMEDOUT = -4, PXS_ERR_STALE = -5, &
       PXS_ERR_CORRUPT = -6, PXS_ERR_TOO_BIG = -7, PXS_ERR_CLOSED = -8, &
       PXS_ERR_MPI = -9, PXS_ERR_NOTSUP = -10, PXS_ERR_BUSY = -11, &
       PXS_ERR_NOT_FOUND = -12, PXS_ERR_TRUNC = -13, &
       PXS_ERR_IO = -15, PXS_ERR_PEER = -16
  integer, parameter, public :: PXS_PROXY_SIZE = 64, PXS_EVENT_META_MAX = 96, &
       PXS_PROXY_TEXT_LEN = 134, PXS_GROUP_NAME_MAX = 31
  integer, parameter, public :: PXS_CONN_LOCAL = 1, PXS_CONN_RMA = 2
  !> PXS_TOPIC_ALL (0xFFFFFFFF) as a signed 32-bit integer.
  integer, parameter, public :: PXS_TOPIC_ALL = -1
  real(c_double), parameter, public :: PXS_WAIT_FOREVER = -1.0_c_double

  !> The proxy: 64 opaque bytes (pxs_proxy_t). Copy by value.
  type, bind(C), public :: pxs_proxy
     integer(c_int8_t) :: bytes(PXS_PROXY_SIZE) = 0_c_int8_t
  end type pxs_proxy

  !> One received event (pxs_event_t). topic/producer/seq as in C; the
  !> metadata is meta(1:meta_len): use transfer() to read values from it.
  type, bind(C), public :: pxs_event
     type(pxs_proxy) :: proxy
     integer(c_int32_t) :: topic = 0
     integer(c_int32_t) :: producer = 0
     integer(c_int64_t) :: seq = 0
     integer(c_int32_t) :: meta_len = 0
     integer(c_int32_t) :: reserved_ = 0
     integer(c_int8_t) :: meta(PXS_EVENT_META_MAX) = 0_c_int8_t
  end type pxs_event

  !> Decoded proxy fields (pxs_proxy_info_t); unsigned C fields are stored
  !> in signed integers of the same width.
  type, bind(C), public :: pxs_proxy_info
     integer(c_int8_t) :: version = 0
     integer(c_int8_t) :: kind = 0
     integer(c_int16_t) :: flags = 0
     integer(c_int32_t) :: owner = 0
     integer(c_int64_t) :: store_nonce = 0
     integer(c_int32_t) :: topic = 0
     integer(c_int64_t) :: offset = 0
     integer(c_int64_t) :: size = 0
     integer(c_int64_t) :: generation = 0
     integer(c_int64_t) :: seq = 0
     integer(c_int32_t) :: payload_crc = 0
     integer(c_int32_t) :: budget = 0
  end type pxs_proxy_info

  !> Handles (C pointers; a default-initialised handle is C NULL).
  type, public :: pxs_store
     type(c_ptr) :: h = c_null_ptr
  end type pxs_store
  type, public :: pxs_bus
     type(c_ptr) :: h = c_null_ptr
  end type pxs_bus
  type, public :: pxs_publisher
     type(c_ptr) :: h = c_null_ptr
  end type pxs_publisher
  type, public :: pxs_subscriber
     type(c_ptr) :: h = c_null_ptr
  end type pxs_subscriber
  type, public :: pxs_producer
     type(c_ptr) :: h = c_null_ptr
  end type pxs_producer
  type, public :: pxs_consumer
     type(c_ptr) :: h = c_null_ptr
  end type pxs_consumer

  public :: pxs_strerror, pxs_errname, pxs_last_error_detail
  public :: pxs_store_create, pxs_store_put, pxs_store_resolve, pxs_store_evict, &
       pxs_store_destroy
  public :: pxs_bus_create, pxs_bus_publisher, pxs_bus_subscriber, pxs_bus_destroy
  public :: pxs_producer_create, pxs_producer_send, pxs_producer_send_proxy, &
       pxs_producer_flush, pxs_producer_close_topic, pxs_producer_destroy
  public :: pxs_consumer_create, pxs_consumer_next, pxs_consumer_resolve, &
       pxs_consumer_discard, pxs_consumer_destroy
  public :: pxs_proxy_validate, pxs_proxy_decode, pxs_proxy_to_text, &
       pxs_proxy_from_text

  interface
     ! --- status.h
     function c_strerror(code) bind(C, name="pxs_strerror") result(s)
       import :: c_int, c_ptr
       integer(c_int), value :: code
       type(c_ptr) :: s
     end function c_strerror
     function c_errname(code) bind(C, name="pxs_errname") result(s)
       import :: c_int, c_ptr
       integer(c_int), value :: code
       type(c_ptr) :: s
     end function c_errname
     function c_detail() bind(C, name="pxsf_last_error_detail") result(s)
       import :: c_ptr
       type(c_ptr) :: s
     end function c_detail
     function c_strlen(s) bind(C, name="strlen") result(n)
       import :: c_ptr, c_size_t
       type(c_ptr), value :: s
       integer(c_size_t) :: n
     end function c_strlen
     ! --- proxy.h
     function c_proxy_validate(p) bind(C, name="pxs_proxy_validate") result(rc)
       import :: c_int, pxs_proxy
       type(pxs_proxy), intent(in) :: p
       integer(c_int) :: rc
     end function c_proxy_validate
     function c_proxy_decode(p, n, info) bind(C, name="pxs_proxy_decode") result(rc)
       import :: c_int, c_size_t, pxs_proxy, pxs_proxy_info
       type(pxs_proxy), intent(in) :: p
       integer(c_size_t), value :: n
       type(pxs_proxy_info), intent(out) :: info
       integer(c_int) :: rc
     end function c_proxy_decode
     function c_proxy_to_text(p, buf, cap) bind(C, name="pxs_proxy_to_text") result(rc)
       import :: c_int, c_size_t, c_char, pxs_proxy
       type(pxs_proxy), intent(in) :: p
       character(kind=c_char), intent(out) :: buf(*)
       integer(c_size_t), value :: cap
       integer(c_int) :: rc
     end function c_proxy_to_text
     function c_proxy_from_text(text, p) bind(C, name="pxs_proxy_from_text") result(rc)
       import :: c_int, c_char, pxs_proxy
       character(kind=c_char), intent(in) :: text(*)
       type(pxs_proxy), intent(out) :: p
       integer(c_int) :: rc
     end function c_proxy_from_text
     ! --- store.h (through the shim where Fortran arguments need converting)
     function c_store_create(comm, connector, arena_bytes, put_timeout, shm, out) &
          bind(C, name="pxsf_store_create") result(rc)
       import :: c_int, c_int64_t, c_double, c_ptr
       integer(c_int), value :: comm
       integer(c_int), intent(in), optional :: connector, shm
       integer(c_int64_t), intent(in), optional :: arena_bytes
       real(c_double), intent(in), optional :: put_timeout
       type(c_ptr), intent(out) :: out
       integer(c_int) :: rc
     end function c_store_create
     function c_store_put(st, data, resolves, checksum, timeout, p) &
          bind(C, name="pxsf_store_put") result(rc)
       import :: c_int, c_double, c_ptr, pxs_proxy
       type(c_ptr), value :: st
       type(*), dimension(..), intent(in) :: data
       integer(c_int), intent(in), optional :: resolves, checksum
       real(c_double), intent(in), optional :: timeout
       type(pxs_proxy), intent(out) :: p
       integer(c_int) :: rc
     end function c_store_put
     function c_store_resolve(st, p, buf, n) bind(C, name="pxsf_store_resolve") result(rc)
       import :: c_int, c_int64_t, c_ptr, pxs_proxy
       type(c_ptr), value :: st
       type(pxs_proxy), intent(in) :: p
       type(*), dimension(..), intent(inout) :: buf
       integer(c_int64_t), intent(out) :: n
       integer(c_int) :: rc
     end function c_store_resolve
     function c_store_evict(st, p) bind(C, name="pxs_store_evict") result(rc)
       import :: c_int, c_ptr, pxs_proxy
       type(c_ptr), value :: st
       type(pxs_proxy), intent(in) :: p
       integer(c_int) :: rc
     end function c_store_evict
     ! --- pubsub.h
     function c_bus_create(comm, pub, npub, sub, nsub, groups, glen, prefetch, &
          slots, batch, send_timeout, out) bind(C, name="pxsf_bus_create") result(rc)
       import :: c_int, c_int32_t, c_int64_t, c_double, c_char, c_ptr
       integer(c_int), value :: comm
       integer(c_int32_t), intent(in) :: pub(*), sub(*)
       integer(c_int64_t), value :: npub, nsub, glen
       character(kind=c_char), intent(in), optional :: groups(*)
       integer(c_int32_t), intent(in), optional :: prefetch(*)
       integer(c_int32_t), intent(in), optional :: slots, batch
       real(c_double), intent(in), optional :: send_timeout
       type(c_ptr), intent(out) :: out
       integer(c_int) :: rc
     end function c_bus_create
     ! --- stream.h
     function c_producer_create(st, pub, topics, ntopics, batch, max_delay, resolves, &
          checksum, put_timeout, close_on_destroy, out) &
          bind(C, name="pxsf_producer_create") result(rc)
       import :: c_int, c_int32_t, c_int64_t, c_double, c_ptr
       type(c_ptr), value :: st, pub
       integer(c_int32_t), intent(in) :: topics(*)
       integer(c_int64_t), value :: ntopics
       integer(c_int32_t), intent(in), optional :: batch, resolves
       real(c_double), intent(in), optional :: max_delay, put_timeout
       integer(c_int), intent(in), optional :: checksum, close_on_destroy
       type(c_ptr), intent(out) :: out
       integer(c_int) :: rc
     end function c_producer_create
     function c_producer_send(prod, topic, data, meta, resolves, keep, checksum, p) &
          bind(C, name="pxsf_producer_send") result(rc)
       import :: c_int, c_int32_t, c_ptr, pxs_proxy
       type(c_ptr), value :: prod
       integer(c_int32_t), value :: topic
       type(*), dimension(..), intent(in) :: data
       type(*), dimension(..), intent(in), optional :: meta
       integer(c_int32_t), intent(in), optional :: resolves
       integer(c_int), intent(in), optional :: keep, checksum
       type(pxs_proxy), intent(out) :: p
       integer(c_int) :: rc
     end function c_producer_send
     function c_producer_send_proxy(prod, topic, p, meta) &
          bind(C, name="pxsf_producer_send_proxy") result(rc)
       import :: c_int, c_int32_t, c_ptr, pxs_proxy
       type(c_ptr), value :: prod
       integer(c_int32_t), value :: topic
       type(pxs_proxy), intent(in) :: p
       type(*), dimension(..), intent(in), optional :: meta
       integer(c_int) :: rc
     end function c_producer_send_proxy
     function c_producer_close_topic(prod, topic) &
          bind(C, name="pxs_producer_close_topic") result(rc)
       import :: c_int, c_int32_t, c_ptr
       type(c_ptr), value :: prod
       integer(c_int32_t), value :: topic
       integer(c_int) :: rc
     end function c_producer_close_topic
     function c_consumer_create(st, sub, opts, out) &
          bind(C, name="pxs_consumer_create") result(rc)
       import :: c_int, c_ptr
       type(c_ptr), value :: st, sub, opts
       type(c_ptr), intent(out) :: out
       integer(c_int) :: rc
     end function c_consumer_create
     function c_consumer_next(cons, ev, timeout) bind(C, name="pxs_consumer_next") result(rc)
       import :: c_int, c_double, c_ptr, pxs_event
       type(c_ptr), value :: cons
       type(pxs_event), intent(inout) :: ev
       real(c_double), value :: timeout
       integer(c_int) :: rc
     end function c_consumer_next
     function c_consumer_resolve(cons, ev, buf, n) &
          bind(C, name="pxsf_consumer_resolve") result(rc)
       import :: c_int, c_int64_t, c_ptr, pxs_event
       type(c_ptr), value :: cons
       type(pxs_event), intent(in) :: ev
       type(*), dimension(..), intent(inout) :: buf
       integer(c_int64_t), intent(out) :: n
       integer(c_int) :: rc
     end function c_consumer_resolve
     function c_consumer_discard(cons, ev) bind(C, name="pxs_consumer_discard") result(rc)
       import :: c_int, c_ptr, pxs_event
       type(c_ptr), value :: cons
       type(pxs_event), intent(in) :: ev
       integer(c_int) :: rc
     end function c_consumer_discard
  end interface

  ! C functions sharing a shape: one abstract interface per shape, each
  ! function bound to its C name through it.
  abstract interface
     !> int f(handle): destroy, flush
     function c_handle_fn(h) bind(C) result(rc)
       import :: c_int, c_ptr
       type(c_ptr), value :: h
       integer(c_int) :: rc
     end function c_handle_fn
     !> int f(handle, handle *out): a bus's publisher, subscriber
     function c_handle_out_fn(h, out) bind(C) result(rc)
       import :: c_int, c_ptr
       type(c_ptr), value :: h
       type(c_ptr), intent(out) :: out
       integer(c_int) :: rc
     end function c_handle_out_fn
  end interface
  procedure(c_handle_fn), bind(C, name="pxs_store_destroy") :: c_store_destroy
  procedure(c_handle_fn), bind(C, name="pxs_bus_destroy") :: c_bus_destroy
  procedure(c_handle_fn), bind(C, name="pxs_producer_flush") :: c_producer_flush
  procedure(c_handle_fn), bind(C, name="pxs_producer_destroy") :: c_producer_destroy
  procedure(c_handle_fn), bind(C, name="pxs_consumer_destroy") :: c_consumer_destroy
  procedure(c_handle_out_fn), bind(C, name="pxs_bus_publisher") :: c_bus_publisher
  procedure(c_handle_out_fn), bind(C, name="pxs_bus_subscriber") :: c_bus_subscriber

contains

  ! ------------------------------------------------------------ helpers

  function c_string(p) result(s)
    type(c_ptr), intent(in) :: p
    character(:), allocatable :: s
    character(kind=c_char), pointer :: chars(:)
    integer :: n, i
    if (.not. c_associated(p)) then
       s = ''
       return
    end if
    n = int(c_strlen(p))
    call c_f_pointer(p, chars, [n])
    allocate (character(n) :: s)
    do i = 1, n
       s(i:i) = chars(i)
    end do
  end function c_string

  !> Short English description of a status code.
  function pxs_strerror(code) result(s)
    integer, intent(in) :: code
    character(:), allocatable :: s
    s = c_string(c_strerror(int(code, c_int)))
  end function pxs_strerror

  !> Symbolic name of a status code, e.g. "PXS_ERR_STALE".
  function pxs_errname(code) result(s)
    integer, intent(in) :: code
    character(:), allocatable :: s
    s = c_string(c_errname(int(code, c_int)))
  end function pxs_errname

  !> The calling thread's most recent failure, one line ("" if none).
  function pxs_last_error_detail() result(s)
    character(:), allocatable :: s
    s = c_string(c_detail())
  end function pxs_last_error_detail

  !> Hand rc to ierr, or stop on a failure when ierr is absent.
  subroutine finish(rc, what, ierr)
    integer(c_int), intent(in) :: rc
    character(*), intent(in) :: what
    integer, intent(out), optional :: ierr
    if (present(ierr)) then
       ierr = int(rc)
    else if (rc < 0) then
       write (error_unit, '(a)') 'proxystream: '//what//': '//pxs_errname(int(rc))// &
            ' ('//pxs_strerror(int(rc))//'): '//pxs_last_error_detail()
       flush (error_unit)
       error stop 1
    end if
  end subroutine finish

  !> Destroy a handle through fn and forget it (freed even when fn fails);
  !> rc as finish takes it.
  subroutine destroy_handle(fn, h, what, ierr)
    procedure(c_handle_fn) :: fn
    type(c_ptr), intent(inout) :: h
    character(*), intent(in) :: what
    integer, intent(out), optional :: ierr
    integer(c_int) :: rc
    rc = fn(h)
    h = c_null_ptr
    call finish(rc, what, ierr)
  end subroutine destroy_handle

  function flag(l) result(i)
    logical, intent(in) :: l
    integer(c_int) :: i
    i = merge(1_c_int, 0_c_int, l)
  end function flag

  ! ------------------------------------------------------------ proxies

  !> Check a proxy (length, version, kind, flags, checksum): PXS_ERR_CORRUPT
  !> for a forged or damaged one.
  subroutine pxs_proxy_validate(proxy, ierr)
    type(pxs_proxy), intent(in) :: proxy
    integer, intent(out), optional :: ierr
    call finish(c_proxy_validate(proxy), 'pxs_proxy_validate', ierr)
  end subroutine pxs_proxy_validate

  !> Decode a proxy's fields (info%size is the object's size in bytes).
  subroutine pxs_proxy_decode(proxy, info, ierr)
    type(pxs_proxy), intent(in) :: proxy
    type(pxs_proxy_info), intent(out) :: info
    integer, intent(out), optional :: ierr
    call finish(c_proxy_decode(proxy, int(PXS_PROXY_SIZE, c_size_t), info), &
         'pxs_proxy_decode', ierr)
  end subroutine pxs_proxy_decode

  !> Text form "pxs2:<128 hex>" ('' on failure).
  function pxs_proxy_to_text(proxy, ierr) result(s)
    type(pxs_proxy), intent(in) :: proxy
    integer, intent(out), optional :: ierr
    character(:), allocatable :: s
    character(kind=c_char) :: buf(PXS_PROXY_TEXT_LEN)
    integer(c_int) :: rc
    integer :: i
    rc = c_proxy_to_text(proxy, buf, int(PXS_PROXY_TEXT_LEN, c_size_t))
    if (rc == PXS_OK) then
       allocate (character(PXS_PROXY_TEXT_LEN - 1) :: s)
       do i = 1, PXS_PROXY_TEXT_LEN - 1
          s(i:i) = buf(i)
       end do
    else
       s = ''
    end if
    call finish(rc, 'pxs_proxy_to_text', ierr)
  end function pxs_proxy_to_text

  !> Parse the text form (surrounding blanks allowed) and validate it.
  subroutine pxs_proxy_from_text(text, proxy, ierr)
    character(*), intent(in) :: text
    type(pxs_proxy), intent(out) :: proxy
    integer, intent(out), optional :: ierr
    call finish(c_proxy_from_text(text//c_null_char, proxy), 'pxs_proxy_from_text', ierr)
  end subroutine pxs_proxy_from_text

  ! ------------------------------------------------------------ store

  !> Create a store (collective over comm). Absent options take the C
  !> library's defaults (and its PXS_* environment overrides).
  subroutine pxs_store_create(store, comm, connector, arena_bytes, put_timeout, shm, ierr)
    type(pxs_store), intent(out) :: store
    type(MPI_Comm), intent(in) :: comm
    integer, intent(in), optional :: connector, shm
    integer(int64), intent(in), optional :: arena_bytes
    real(c_double), intent(in), optional :: put_timeout
    integer, intent(out), optional :: ierr
    call finish(c_store_create(int(comm%MPI_VAL, c_int), connector, arena_bytes, &
         put_timeout, shm, store%h), 'pxs_store_create', ierr)
  end subroutine pxs_store_create

  !> Copy a contiguous array (any type, any rank, or a scalar) into the store.
  !> resolves: budget (default 1); keep = .true.: kept until pxs_store_evict.
  subroutine pxs_store_put(store, buf, proxy, resolves, keep, checksum, timeout, ierr)
    type(pxs_store), intent(in) :: store
    type(*), dimension(..), intent(in) :: buf
    type(pxs_proxy), intent(out) :: proxy
    integer, intent(in), optional :: resolves
    logical, intent(in), optional :: keep, checksum
    real(c_double), intent(in), optional :: timeout
    integer, intent(out), optional :: ierr
    integer(c_int) :: r, ck
    integer(c_int) :: rc
    r = 1
    if (present(resolves)) r = int(resolves, c_int)
    if (present(keep)) then
       if (keep) r = 0
    end if
    ck = 0
    if (present(checksum)) ck = flag(checksum)
    rc = c_store_put(store%h, buf, r, ck, timeout, proxy)
    call finish(rc, 'pxs_store_put', ierr)
  end subroutine pxs_store_put

  !> Resolve a proxy into a contiguous array (its storage size must hold the
  !> object, else PXS_ERR_TRUNC and nbytes gets the size). Counts as a resolve.
  subroutine pxs_store_resolve(store, proxy, buf, nbytes, ierr)
    type(pxs_store), intent(in) :: store
    type(pxs_proxy), intent(in) :: proxy
    type(*), dimension(..), intent(inout) :: buf
    integer(int64), intent(out), optional :: nbytes
    integer, intent(out), optional :: ierr
    integer(c_int64_t) :: n
    n = 0
    call finish(c_store_resolve(store%h, proxy, buf, n), 'pxs_store_resolve', ierr)
    if (present(nbytes)) nbytes = n
  end subroutine pxs_store_resolve

  !> Evict (owner) or give up this holder's claim (others).
  subroutine pxs_store_evict(store, proxy, ierr)
    type(pxs_store), intent(in) :: store
    type(pxs_proxy), intent(in) :: proxy
    integer, intent(out), optional :: ierr
    call finish(c_store_evict(store%h, proxy), 'pxs_store_evict', ierr)
  end subroutine pxs_store_evict

  !> Destroy the store (collective). On PXS_ERR_BUSY the store stays usable
  !> on every rank and every rank calls destroy again.
  subroutine pxs_store_destroy(store, ierr)
    type(pxs_store), intent(inout) :: store
    integer, intent(out), optional :: ierr
    integer(c_int) :: rc
    rc = c_store_destroy(store%h)
    if (rc /= PXS_ERR_BUSY) store%h = c_null_ptr
    call finish(rc, 'pxs_store_destroy', ierr)
  end subroutine pxs_store_destroy

  ! ------------------------------------------------------------ bus

  !> Create the MPI mailbox bus (collective). publish: topics this rank
  !> publishes; subscribe: topics it receives; groups(i) (same size as
  !> subscribe, blank = plain) makes subscription i a member of that
  !> work-sharing group; prefetch(i) its prefetch (0 = default).
  subroutine pxs_bus_create(bus, comm, publish, subscribe, groups, prefetch, slots, &
       batch, send_timeout, ierr)
    type(pxs_bus), intent(out) :: bus
    type(MPI_Comm), intent(in) :: comm
    integer, intent(in), optional :: publish(:), subscribe(:)
    character(*), intent(in), optional :: groups(:)
    integer, intent(in), optional :: prefetch(:)
    integer, intent(in), optional :: slots, batch
    real(c_double), intent(in), optional :: send_timeout
    integer, intent(out), optional :: ierr
    integer(c_int32_t), allocatable :: pub(:), sub(:), pf(:)
    character(kind=c_char), allocatable :: names(:)
    integer(c_int32_t) :: sl, bt
    integer(c_int) :: rc
    integer :: i, j, glen
    allocate (pub(0), sub(0))
    if (present(publish)) pub = int(publish, c_int32_t)
    if (present(subscribe)) sub = int(subscribe, c_int32_t)
    sl = 0
    bt = 0
    if (present(slots)) sl = int(slots, c_int32_t)
    if (present(batch)) bt = int(batch, c_int32_t)
    allocate (pf(size(sub)))
    pf = 0
    if (present(prefetch)) then
       i = min(size(prefetch), size(sub))
       pf(1:i) = int(prefetch(1:i), c_int32_t)
    end if
    glen = 0
    allocate (names(0))
    if (present(groups)) then
       glen = len(groups)
       deallocate (names)
       allocate (names(max(1, glen * size(sub))))
       names = ' '
       do i = 1, min(size(groups), size(sub))
          do j = 1, glen
             names((i - 1) * glen + j) = groups(i)(j:j)
          end do
       end do
    end if
    if (present(groups)) then
       rc = c_bus_create(int(comm%MPI_VAL, c_int), pub, int(size(pub), c_int64_t), sub, &
            int(size(sub), c_int64_t), names, int(glen, c_int64_t), pf, sl, bt, &
            send_timeout, bus%h)
    else
       rc = c_bus_create(int(comm%MPI_VAL, c_int), pub, int(size(pub), c_int64_t), sub, &
            int(size(sub), c_int64_t), glen=0_c_int64_t, prefetch=pf, slots=sl, &
            batch=bt, send_timeout=send_timeout, out=bus%h)
    end if
    call finish(rc, 'pxs_bus_create', ierr)
  end subroutine pxs_bus_create

  !> The bus's publisher (borrowed: valid until pxs_bus_destroy).
  subroutine pxs_bus_publisher(bus, pub, ierr)
    type(pxs_bus), intent(in) :: bus
    type(pxs_publisher), intent(out) :: pub
    integer, intent(out), optional :: ierr
    call finish(c_bus_publisher(bus%h, pub%h), 'pxs_bus_publisher', ierr)
  end subroutine pxs_bus_publisher

  !> The bus's subscriber (borrowed: valid until pxs_bus_destroy).
  subroutine pxs_bus_subscriber(bus, sub, ierr)
    type(pxs_bus), intent(in) :: bus
    type(pxs_subscriber), intent(out) :: sub
    integer, intent(out), optional :: ierr
    call finish(c_bus_subscriber(bus%h, sub%h), 'pxs_bus_subscriber', ierr)
  end subroutine pxs_bus_subscriber

  !> Destroy the bus (collective).
  subroutine pxs_bus_destroy(bus, ierr)
    type(pxs_bus), intent(inout) :: bus
    integer, intent(out), optional :: ierr
    call destroy_handle(c_bus_destroy, bus%h, 'pxs_bus_destroy', ierr)
  end subroutine pxs_bus_destroy

  ! ------------------------------------------------------------ producer

  !> Create a producer on a store (an unset pxs_store for a forward-only
  !> producer) and a publisher. Absent options: the C defaults.
  subroutine pxs_producer_create(prod, store, pub, topics, batch, max_delay, resolves, &
       checksum, put_timeout, close_on_destroy, ierr)
    type(pxs_producer), intent(out) :: prod
    type(pxs_store), intent(in) :: store
    type(pxs_publisher), intent(in) :: pub
    integer, intent(in), optional :: topics(:)
    integer, intent(in), optional :: batch, resolves
    real(c_double), intent(in), optional :: max_delay, put_timeout
    logical, intent(in), optional :: checksum, close_on_destroy
    integer, intent(out), optional :: ierr
    integer(c_int32_t), allocatable :: t(:)
    integer(c_int32_t) :: bt, rs
    integer(c_int) :: ck, cd
    allocate (t(0))
    if (present(topics)) t = int(topics, c_int32_t)
    bt = 0
    rs = 0
    ck = 0
    cd = 1
    if (present(batch)) bt = int(batch, c_int32_t)
    if (present(resolves)) rs = int(resolves, c_int32_t)
    if (present(checksum)) ck = flag(checksum)
    if (present(close_on_destroy)) cd = flag(close_on_destroy)
    call finish(c_producer_create(store%h, pub%h, t, int(size(t), c_int64_t), bt, &
         max_delay, rs, ck, put_timeout, cd, prod%h), 'pxs_producer_create', ierr)
  end subroutine pxs_producer_create

  !> Put a contiguous array (any type and rank) in the store and publish its
  !> proxy on topic. meta: inline metadata (any contiguous type, <= 96 bytes).
  !> proxy (optional): the stored object's proxy.
  subroutine pxs_producer_send(prod, topic, buf, meta, proxy, resolves, keep, checksum, ierr)
    type(pxs_producer), intent(in) :: prod
    integer, intent(in) :: topic
    type(*), dimension(..), intent(in) :: buf
    type(*), dimension(..), intent(in), optional :: meta
    type(pxs_proxy), intent(out), optional :: proxy
    integer, intent(in), optional :: resolves
    logical, intent(in), optional :: keep, checksum
    integer, intent(out), optional :: ierr
    type(pxs_proxy) :: p
    integer(c_int32_t) :: rs
    integer(c_int) :: kp, ck, rc
    rs = 0
    kp = 0
    ck = -1
    if (present(resolves)) rs = int(resolves, c_int32_t)
    if (present(keep)) kp = flag(keep)
    if (present(checksum)) ck = flag(checksum)
    rc = c_producer_send(prod%h, int(topic, c_int32_t), buf, meta, rs, kp, ck, p)
    if (present(proxy) .and. rc == PXS_OK) proxy = p
    call finish(rc, 'pxs_producer_send', ierr)
  end subroutine pxs_producer_send

  !> Publish an existing proxy on topic without touching its bytes (forward).
  subroutine pxs_producer_send_proxy(prod, topic, proxy, meta, ierr)
    type(pxs_producer), intent(in) :: prod
    integer, intent(in) :: topic
    type(pxs_proxy), intent(in) :: proxy
    type(*), dimension(..), intent(in), optional :: meta
    integer, intent(out), optional :: ierr
    call finish(c_producer_send_proxy(prod%h, int(topic, c_int32_t), proxy, meta), &
         'pxs_producer_send_proxy', ierr)
  end subroutine pxs_producer_send_proxy

  !> Deliver every coalesced event now.
  subroutine pxs_producer_flush(prod, ierr)
    type(pxs_producer), intent(in) :: prod
    integer, intent(out), optional :: ierr
    call finish(c_producer_flush(prod%h), 'pxs_producer_flush', ierr)
  end subroutine pxs_producer_flush

  !> Flush and send END on topic.
  subroutine pxs_producer_close_topic(prod, topic, ierr)
    type(pxs_producer), intent(in) :: prod
    integer, intent(in) :: topic
    integer, intent(out), optional :: ierr
    call finish(c_producer_close_topic(prod%h, int(topic, c_int32_t)), &
         'pxs_producer_close_topic', ierr)
  end subroutine pxs_producer_close_topic

  !> Close the producer's topics (END), flush, free the handle.
  subroutine pxs_producer_destroy(prod, ierr)
    type(pxs_producer), intent(inout) :: prod
    integer, intent(out), optional :: ierr
    call destroy_handle(c_producer_destroy, prod%h, 'pxs_producer_destroy', ierr)
  end subroutine pxs_producer_destroy

  ! ------------------------------------------------------------ consumer

  !> Create a consumer on a store (to resolve) and a subscriber.
  subroutine pxs_consumer_create(cons, store, sub, ierr)
    type(pxs_consumer), intent(out) :: cons
    type(pxs_store), intent(in) :: store
    type(pxs_subscriber), intent(in) :: sub
    integer, intent(out), optional :: ierr
    call finish(c_consumer_create(store%h, sub%h, c_null_ptr, cons%h), &
         'pxs_consumer_create', ierr)
  end subroutine pxs_consumer_create

  !> Next event: .true. with ev filled; .false. at the end of the stream
  !> (PXS_END: every producer closed) or on timeout (PXS_TIMEOUT).
  !> timeout in seconds: absent or < 0 waits, 0 polls. ierr gets PXS_OK,
  !> PXS_END, PXS_TIMEOUT or the failure.
  function pxs_consumer_next(cons, ev, timeout, ierr) result(got)
    type(pxs_consumer), intent(in) :: cons
    type(pxs_event), intent(inout) :: ev
    real(c_double), intent(in), optional :: timeout
    integer, intent(out), optional :: ierr
    logical :: got
    real(c_double) :: t
    integer(c_int) :: rc
    t = PXS_WAIT_FOREVER
    if (present(timeout)) t = timeout
    rc = c_consumer_next(cons%h, ev, t)
    got = rc == PXS_OK
    call finish(rc, 'pxs_consumer_next', ierr)
  end function pxs_consumer_next

  !> Resolve an event's object into a contiguous array (counts as a resolve).
  subroutine pxs_consumer_resolve(cons, ev, buf, nbytes, ierr)
    type(pxs_consumer), intent(in) :: cons
    type(pxs_event), intent(in) :: ev
    type(*), dimension(..), intent(inout) :: buf
    integer(int64), intent(out), optional :: nbytes
    integer, intent(out), optional :: ierr
    integer(c_int64_t) :: n
    n = 0
    call finish(c_consumer_resolve(cons%h, ev, buf, n), 'pxs_consumer_resolve', ierr)
    if (present(nbytes)) nbytes = n
  end subroutine pxs_consumer_resolve

  !> Give up this consumer's claim on an event's object without reading it.
  subroutine pxs_consumer_discard(cons, ev, ierr)
    type(pxs_consumer), intent(in) :: cons
    type(pxs_event), intent(in) :: ev
    integer, intent(out), optional :: ierr
    call finish(c_consumer_discard(cons%h, ev), 'pxs_consumer_discard', ierr)
  end subroutine pxs_consumer_discard

  !> Free the consumer.
  subroutine pxs_consumer_destroy(cons, ierr)
    type(pxs_consumer), intent(inout) :: cons
    integer, intent(out), optional :: ierr
    call destroy_handle(c_consumer_destroy, cons%h, 'pxs_consumer_destroy', ierr)
  end subroutine pxs_consumer_destroy

end module proxystream
