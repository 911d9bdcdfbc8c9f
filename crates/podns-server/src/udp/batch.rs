//! Batched UDP on Linux: many datagrams per `recvmmsg`, all their answers in one `sendmmsg`.
//!
//! This module is responsible for the worker loop where the kernel offers `recvmmsg(2)` and
//! `sendmmsg(2)`: one call takes the queued datagrams (up to twice the last batch, 8 … [`BATCH`]),
//! [`Handler::handle`] answers each into its own response buffer, and one call sends every
//! answer. The per-datagram decisions (rate limiting, forwarding, metrics) stay in [`Handler`].
//! NSD batches the same way. What it bought (BENCHMARKS.md, "Batched UDP"): at saturation
//! 20–27 datagrams per `recvmmsg`, server CPU per query −11–12 % against the one-datagram loop
//! (now level with NSD), user-space instructions per query halved (callgrind: 2,515 against
//! ~5,000); at half load (batches of ~6) nothing, since on loopback most of the ~7 µs per query
//! is the kernel's per-datagram UDP path, which batching does not shorten.
//!
//! All buffers are allocated once per worker (about 340 KiB with the default 1232-octet
//! maximum: 64 × 4 KiB receive + 64 × 1232 response), so the loop allocates nothing
//! (`tests/no_alloc.rs`). The system calls go through `nix` 0.32, the one maintained crate with
//! a safe `recvmmsg` (rustix and socket2 have `sendmmsg` only), so there is no `unsafe` here;
//! its `recvmmsg` and `sendmmsg` allocate nothing when no control messages are passed. Its
//! `MultiHeaders` hold raw pointers, so they are not `Send` and cannot live in the worker's
//! future across an `.await`: they live in a thread-local ([`HEADERS`]), used only between two
//! awaits, allocated once per runtime thread.
//!
//! | case | what happens |
//! |---|---|
//! | datagram longer than [`RECV_SIZE`] (`MSG_TRUNC`) | FORMERR, header and question echoed |
//! | `sendmmsg` sent only some (socket buffer full) | the rest waits for writability, no spinning |
//! | one answer cannot be sent (its destination fails) | logged, skipped; the others still go |
//! | shutdown while datagrams keep coming | checked before every batch and while waiting to send |
//! | `recvmmsg` not implemented (`ENOSYS`, some sandboxes) | the worker falls back to the portable loop |

use std::cell::RefCell;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg,
};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::watch;

use super::{Handler, Reply, max_udp_response};

/// Most datagrams taken per `recvmmsg` and answers sent per `sendmmsg`. NSD takes 100; 64
/// keeps a worker's buffers small, and at saturation the average batch was 20–27
/// (BENCHMARKS.md, "Batched UDP").
pub(super) const BATCH: usize = 64;

/// Receive buffer per datagram. A query is a header, one question (≤ 271 octets) and an OPT
/// with its options (cookies: 40 octets, RFC 7873; padding to 468, RFC 8467): 4 KiB holds any
/// query a resolver sends, at a sixteenth of 65,535. A longer datagram arrives cut short
/// (`MSG_TRUNC`) and gets FORMERR.
pub(super) const RECV_SIZE: usize = 4096;

/// Why [`run`] returned.
pub(super) enum Ended {
    /// `shutdown` turned true.
    Shutdown,
    /// The kernel has no `recvmmsg`/`sendmmsg`; the caller serves with the portable loop.
    Unsupported(watch::Receiver<bool>),
}

/// Serves `socket` in batches until `shutdown` turns true.
pub(super) async fn run(
    socket: &UdpSocket,
    handler: &mut Handler,
    mut shutdown: watch::Receiver<bool>,
) -> Ended {
    let family = match socket.local_addr() {
        Ok(SocketAddr::V4(_)) => Family::V4,
        Ok(SocketAddr::V6(_)) => Family::V6,
        Err(error) => {
            tracing::info!(%error, "no local address: serving UDP one datagram at a time");
            return Ended::Unsupported(shutdown);
        }
    };
    let mut batch = Batch::new(family, max_udp_response(&handler.config));
    loop {
        // Seen between batches even while datagrams keep coming; one atomic load, where a
        // `wait_for` future per batch cost ~650 instructions (callgrind, BENCHMARKS.md).
        if stop_requested(&mut shutdown) {
            return Ended::Shutdown;
        }
        let received = match batch.receive(socket) {
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                // Drained: wait for the next datagram, or shutdown.
                tokio::select! {
                    biased;
                    _ = shutdown.wait_for(|stop| *stop) => return Ended::Shutdown,
                    ready = socket.readable() => {
                        if let Err(error) = ready {
                            tracing::debug!(%error, "udp readiness failed");
                        }
                    }
                }
                continue;
            }
            Err(error) if error.raw_os_error() == Some(Errno::ENOSYS as i32) => {
                tracing::info!(%error, "no recvmmsg: serving UDP one datagram at a time");
                return Ended::Unsupported(shutdown);
            }
            Err(error) => {
                // One datagram's problem (the socket goes on).
                tracing::debug!(%error, "udp receive failed");
                tokio::task::coop::consume_budget().await;
                continue;
            }
        };
        let started = Instant::now();
        if let Some(metrics) = &handler.services.metrics {
            metrics.query().record_udp_batch(received);
        }
        batch.answer(received, handler, started);
        if batch.send(socket, &mut shutdown).await == Sent::Shutdown {
            return Ended::Shutdown;
        }
        batch.count(received, handler, started);
        // A busy socket never waits, so yield when the task's budget is spent: the other
        // tasks of this runtime thread (TCP, forwarded answers, admin) still get their turn.
        tokio::task::coop::consume_budget().await;
    }
}

/// Whether shutdown was asked for (or can no longer be: the sender is gone), without waiting.
fn stop_requested(shutdown: &mut watch::Receiver<bool>) -> bool {
    match shutdown.has_changed() {
        Ok(false) => false,
        Ok(true) => *shutdown.borrow_and_update(),
        Err(_) => true,
    }
}

/// Whether [`Batch::send`] finished the batch.
#[derive(Debug, PartialEq, Eq)]
enum Sent {
    /// Every answer went out or failed on its own.
    Done,
    /// `shutdown` turned true while the socket was not writable.
    Shutdown,
}

/// One datagram of the current batch.
#[derive(Clone, Copy)]
struct Slot {
    /// Octets in the receive buffer.
    len: usize,
    /// The datagram was longer than [`RECV_SIZE`] (`MSG_TRUNC`).
    cut: bool,
    /// The sender, as the kernel gave it (and as `sendmmsg` takes it back).
    raw_peer: Option<SockaddrStorage>,
    /// What [`Handler::handle`] decided.
    reply: Reply,
}

/// A worker's buffers and headers, allocated once.
struct Batch {
    /// [`BATCH`] receive buffers of [`RECV_SIZE`] octets, back to back.
    recv: Box<[u8]>,
    /// One response buffer per datagram, each with the capacity of the largest UDP answer.
    out: Box<[Vec<u8>]>,
    /// The datagrams received by the last [`Batch::receive`] (the first `received` slots).
    slots: [Slot; BATCH],
    /// The socket's address family, as an index into [`HEADERS`].
    family: Family,
    /// Which slots have an answer to send, in order: the first `pending` entries.
    to_send: [usize; BATCH],
    /// Their destinations, in the same order.
    to: [Option<SockaddrStorage>; BATCH],
    /// How many entries of `to_send` the current batch has.
    pending: usize,
    /// How many datagrams the next `recvmmsg` asks for: twice the last batch, within
    /// [`MIN_WANT`]..=[`BATCH`], so a quiet socket does not pay for 64 headers per call.
    want: usize,
}

/// The fewest datagrams a `recvmmsg` asks for.
const MIN_WANT: usize = 8;

// === impl Batch ===

impl Batch {
    fn new(family: Family, response_capacity: usize) -> Self {
        Self {
            family,
            recv: vec![0; BATCH * RECV_SIZE].into_boxed_slice(),
            out: (0..BATCH)
                .map(|_| Vec::with_capacity(response_capacity))
                .collect(),
            slots: [Slot {
                len: 0,
                cut: false,
                raw_peer: None,
                reply: Reply::Nothing,
            }; BATCH],
            to_send: [0; BATCH],
            to: [None; BATCH],
            pending: 0,
            want: MIN_WANT,
        }
    }

    /// Takes up to `want` queued datagrams with one `recvmmsg`; `WouldBlock` when none is
    /// queued, or the socket is not known to be readable (no system call then).
    fn receive(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        // The slices handed to nix are a fixed-size array built per call; one sized for 64
        // cost ~1,000 instructions per call even with one datagram queued (callgrind,
        // BENCHMARKS.md), so the array is the smallest power of two that holds `want`.
        let received = match self.want {
            0..=8 => self.receive_n::<8>(socket),
            9..=16 => self.receive_n::<16>(socket),
            17..=32 => self.receive_n::<32>(socket),
            _ => self.receive_n::<BATCH>(socket),
        };
        received.inspect(|&n| self.want = (2 * n).clamp(MIN_WANT, BATCH))
    }

    /// [`Batch::receive`] with room for `N` ≤ [`BATCH`] datagrams.
    fn receive_n<const N: usize>(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        let fd = socket.as_raw_fd();
        let recv = &mut self.recv[..N * RECV_SIZE];
        let slots = &mut self.slots;
        socket.try_io(Interest::READABLE, || {
            with_headers(self.family, |headers| {
                // Built here, not kept: nix ties the slices' lifetime to the headers' borrow.
                let mut chunks = recv.chunks_exact_mut(RECV_SIZE);
                let mut iovs: [[IoSliceMut<'_>; 1]; N] =
                    std::array::from_fn(|_| [IoSliceMut::new(chunks.next().unwrap_or_default())]);
                let messages = recvmmsg(
                    fd,
                    &mut headers.recv,
                    iovs.iter_mut(),
                    MsgFlags::MSG_DONTWAIT,
                    None,
                )?;
                let mut received = 0;
                for (slot, message) in slots.iter_mut().zip(messages) {
                    *slot = Slot {
                        len: message.bytes,
                        cut: message.flags.contains(MsgFlags::MSG_TRUNC),
                        raw_peer: message.address,
                        reply: Reply::Nothing,
                    };
                    received += 1;
                }
                Ok(received)
            })
        })
    }

    /// Answers the first `received` slots, and lists the answers to send.
    fn answer(&mut self, received: usize, handler: &mut Handler, started: Instant) {
        self.pending = 0;
        for (i, (slot, out)) in self.slots[..received]
            .iter_mut()
            .zip(self.out.iter_mut())
            .enumerate()
        {
            let Some((raw, peer)) = slot
                .raw_peer
                .and_then(|raw| Some((raw, socket_addr(&raw)?)))
            else {
                // Not an IP sender: nothing a DNS client sends from.
                slot.reply = Reply::Nothing;
                continue;
            };
            let request = &self.recv[i * RECV_SIZE..i * RECV_SIZE + slot.len.min(RECV_SIZE)];
            slot.reply = handler.handle(request, slot.cut, peer, started, out);
            if slot.reply != Reply::Nothing {
                self.to_send[self.pending] = i;
                self.to[self.pending] = Some(raw);
                self.pending += 1;
            }
        }
    }

    /// Sends the listed answers, with as few `sendmmsg` calls as the socket allows.
    async fn send(&mut self, socket: &UdpSocket, shutdown: &mut watch::Receiver<bool>) -> Sent {
        // As in `receive`: the smallest array that holds the answers.
        match self.pending {
            0 => Sent::Done,
            1..=8 => self.send_n::<8>(socket, shutdown).await,
            9..=16 => self.send_n::<16>(socket, shutdown).await,
            17..=32 => self.send_n::<32>(socket, shutdown).await,
            _ => self.send_n::<BATCH>(socket, shutdown).await,
        }
    }

    /// [`Batch::send`] for at most `N` ≤ [`BATCH`] answers.
    async fn send_n<const N: usize>(
        &mut self,
        socket: &UdpSocket,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Sent {
        let fd = socket.as_raw_fd();
        let pending = self.pending.min(N);
        let mut next = 0;
        let out = &self.out;
        let to_send = &self.to_send;
        let slices: [[IoSlice<'_>; 1]; N] = std::array::from_fn(|k| {
            [IoSlice::new(if k < pending {
                &out[to_send[k]]
            } else {
                &[]
            })]
        });
        let no_control: [ControlMessage<'_>; 0] = [];
        while next < pending {
            let to = &self.to[next..pending];
            let sent = socket.try_io(Interest::WRITABLE, || {
                with_headers(self.family, |headers| {
                    // Iterating the results is how nix reports the count; each item is a copy
                    // of a header, nothing is allocated.
                    Ok(sendmmsg(
                        fd,
                        &mut headers.send,
                        &slices[next..pending],
                        to,
                        no_control,
                        MsgFlags::empty(),
                    )?
                    .count())
                })
            });
            match sent {
                // `sendmmsg` sends in order and stops at the first failure; the next call
                // reports that one's error.
                Ok(n) if n > 0 => next += n,
                // Only for an empty list, which the loop never passes; never spin on it.
                Ok(_) => next += 1,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    tokio::select! {
                        biased;
                        _ = shutdown.wait_for(|stop| *stop) => return Sent::Shutdown,
                        ready = socket.writable() => {
                            if let Err(error) = ready {
                                tracing::debug!(%error, "udp writability failed");
                            }
                        }
                    }
                }
                Err(error) => {
                    // This destination's problem alone: skip it, send the rest.
                    let peer = to.first().copied().flatten().and_then(|a| socket_addr(&a));
                    tracing::debug!(%error, ?peer, "udp send failed");
                    next += 1;
                }
            }
        }
        Sent::Done
    }

    /// Counts the batch's answers, now that they went out.
    fn count(&self, received: usize, handler: &Handler, started: Instant) {
        if handler.services.metrics.is_none() {
            return;
        }
        // Every answer of the batch was received at `started` and went out with the last
        // `sendmmsg`: one clock read serves them all. One per answer put 0.6 % of the server's
        // samples in the vDSO's clock at 100 endpoints, now 0.25 % (perf, BENCHMARKS.md tenth
        // pass).
        let took = started.elapsed();
        for (i, (slot, out)) in self.slots[..received]
            .iter()
            .zip(self.out.iter())
            .enumerate()
        {
            if let Reply::Answer { .. } = slot.reply {
                let request = &self.recv[i * RECV_SIZE..i * RECV_SIZE + slot.len.min(RECV_SIZE)];
                handler.sent(slot.reply, request, out.len(), took);
            }
        }
    }
}

/// A socket's address family: which of [`HEADERS`] it uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    V4 = 0,
    V6 = 1,
}

/// `recvmmsg` and `sendmmsg` headers for one address family, on one thread.
struct Headers {
    /// For `recvmmsg`; they also receive the senders' addresses.
    recv: MultiHeaders<SockaddrStorage>,
    /// For `sendmmsg`, apart from the receive ones: `sendmmsg` points a header's address at
    /// the caller's destination, and `recvmmsg` does not point it back.
    send: MultiHeaders<SockaddrStorage>,
}

thread_local! {
    /// Per runtime thread, per address family (IPv4, IPv6), allocated on first use. Apart per
    /// family because the kernel sets a header's address capacity (`msg_namelen`) to the length
    /// it wrote and nix does not restore it (nix-rust/nix#2813, open): after an IPv4 sender
    /// (16 octets) an IPv6 one (28) would be cut short. Within one family every sender has the
    /// same length, so the capacity left behind always fits the next.
    static HEADERS: RefCell<[Option<Headers>; 2]> = const { RefCell::new([None, None]) };
}

/// Runs `f` with this thread's headers for `family`. Never across an await, so never
/// re-entered; if it were, the call fails instead of panicking.
fn with_headers<R>(family: Family, f: impl FnOnce(&mut Headers) -> io::Result<R>) -> io::Result<R> {
    HEADERS.with(|cell| {
        let mut all = cell
            .try_borrow_mut()
            .map_err(|_| io::Error::other("udp batch headers in use"))?;
        let headers = all[family as usize].get_or_insert_with(|| Headers {
            recv: MultiHeaders::preallocate(BATCH, None),
            send: MultiHeaders::preallocate(BATCH, None),
        });
        f(headers)
    })
}

/// The sender as a `SocketAddr` (for rate limiting, logs and forwarded answers); `None` for a
/// family other than IPv4 or IPv6.
fn socket_addr(raw: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = raw.as_sockaddr_in() {
        return Some(SocketAddr::V4(SocketAddrV4::from(*v4)));
    }
    raw.as_sockaddr_in6()
        .map(|v6| SocketAddr::V6(SocketAddrV6::from(*v6)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch of one small answer per destination, in order.
    fn batch_to(destinations: &[SocketAddr]) -> Batch {
        let mut batch = Batch::new(Family::V4, 512);
        for (k, to) in destinations.iter().enumerate() {
            batch.out[k].clear();
            batch.out[k].extend_from_slice(format!("answer {k}").as_bytes());
            batch.to_send[k] = k;
            batch.to[k] = Some(SockaddrStorage::from(*to));
        }
        batch.pending = destinations.len();
        batch
    }

    #[tokio::test]
    async fn a_destination_that_fails_costs_only_its_own_answer() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        // Port 0 is no destination: sendmsg fails with EINVAL for that message alone.
        let bad: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        // A failure first, in the middle and last.
        let mut batch = batch_to(&[bad, a_addr, bad, b_addr, a_addr, bad]);
        let (_tx, mut shutdown) = watch::channel(false);
        assert_eq!(batch.send(&server, &mut shutdown).await, Sent::Done);
        let mut buf = [0u8; 64];
        for (socket, want) in [(&a, "answer 1"), (&b, "answer 3"), (&a, "answer 4")] {
            let (len, from) = tokio::time::timeout(
                std::time::Duration::from_secs(2),
                socket.recv_from(&mut buf),
            )
            .await
            .expect("the answer arrives")
            .unwrap();
            assert_eq!(from, server.local_addr().unwrap());
            assert_eq!(&buf[..len], want.as_bytes());
        }
    }

    #[test]
    fn senders_of_both_families_convert_back_to_their_addresses() {
        for addr in ["127.0.0.1:5353", "[::1]:5353", "[::ffff:10.0.0.1]:53"] {
            let addr: SocketAddr = addr.parse().unwrap();
            assert_eq!(socket_addr(&SockaddrStorage::from(addr)), Some(addr));
        }
    }
}
