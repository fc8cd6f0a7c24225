//! Linux UDP worker loop with `recvmmsg`/`sendmmsg`: up to [`BATCH`]
//! datagrams per system call in each direction. Under load this halves the
//! system-call cost per query; at low load `MSG_WAITFORONE` returns as soon
//! as one datagram is there, so latency does not suffer.

use std::mem::MaybeUninit;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;

use crate::net::{Shared, UdpWorker};

/// Datagrams per system call.
pub const BATCH: usize = 32;
/// Largest query read; a longer datagram is truncated by the kernel and
/// dropped (`MSG_TRUNC`).
const RECV_SIZE: usize = 4096;
/// Room for one response (UDP answers are at most 1232 bytes; FORMERR and
/// REFUSED are smaller).
const SEND_SIZE: usize = 4096;

pub(crate) fn udp_loop_mmsg(shared: &Shared, sock: &UdpSocket, worker: usize) {
    let fd = sock.as_raw_fd();
    let mut w = UdpWorker::new(shared, worker);
    let mut rbufs: Vec<[u8; RECV_SIZE]> = vec![[0u8; RECV_SIZE]; BATCH];
    let mut outs: Vec<Vec<u8>> = (0..BATCH).map(|_| Vec::with_capacity(SEND_SIZE)).collect();
    let mut lens = [0usize; BATCH];
    // SAFETY: zeroed sockaddr_storage / iovec / mmsghdr are valid values
    // (plain C structs of integers and null pointers).
    let mut names: Vec<libc::sockaddr_storage> =
        vec![unsafe { MaybeUninit::zeroed().assume_init() }; BATCH];
    let mut riov: Vec<libc::iovec> = vec![unsafe { MaybeUninit::zeroed().assume_init() }; BATCH];
    let mut rmsgs: Vec<libc::mmsghdr> = vec![unsafe { MaybeUninit::zeroed().assume_init() }; BATCH];
    let mut siov: Vec<libc::iovec> = vec![unsafe { MaybeUninit::zeroed().assume_init() }; BATCH];
    let mut smsgs: Vec<libc::mmsghdr> = vec![unsafe { MaybeUninit::zeroed().assume_init() }; BATCH];
    let mut from = [0usize; BATCH];
    for i in 0..BATCH {
        riov[i].iov_base = rbufs[i].as_mut_ptr().cast();
        riov[i].iov_len = RECV_SIZE;
        let h = &mut rmsgs[i].msg_hdr;
        h.msg_name = (&raw mut names[i]).cast();
        h.msg_iov = &raw mut riov[i];
        h.msg_iovlen = 1;
        h.msg_control = std::ptr::null_mut();
        h.msg_controllen = 0;
    }
    // Entries the kernel wrote into in the last call (all, at first).
    let mut used = BATCH;
    while !shared.stopping.load(Ordering::Relaxed) {
        // The kernel rewrites only the name length, the flags and the
        // length of the entries it filled; reset those.
        for m in &mut rmsgs[..used] {
            m.msg_hdr.msg_namelen =
                std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            m.msg_hdr.msg_flags = 0;
            m.msg_len = 0;
        }
        // SAFETY: every mmsghdr points at live buffers owned by this frame
        // (names, riov, rbufs) that outlive the call; BATCH entries exist.
        // The raw system call: glibc's wrapper adds thread-cancellation
        // bookkeeping this thread never uses.
        let n = unsafe {
            libc::syscall(
                libc::SYS_recvmmsg,
                fd,
                rmsgs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut::<libc::timespec>(),
            )
        };
        if n <= 0 {
            // Timeout (SO_RCVTIMEO), EINTR or a transient error: let go of
            // a replaced snapshot, check `stopping` and go again.
            used = 0;
            w.refresh();
            continue;
        }
        let n = n as usize;
        used = n;
        let mut nsend = 0usize;
        for i in 0..n {
            let len = rmsgs[i].msg_len as usize;
            let truncated = rmsgs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            let src = to_socket_addr(&names[i]);
            let Some(src) = src else { continue };
            if truncated || len > RECV_SIZE {
                continue;
            }
            let out = &mut outs[nsend];
            if let Some(l) = w.process(&rbufs[i][..len], src, out) {
                lens[nsend] = l;
                from[nsend] = i;
                nsend += 1;
            }
        }
        w.publish();
        if nsend == 0 {
            continue;
        }
        for j in 0..nsend {
            siov[j].iov_base = outs[j].as_mut_ptr().cast();
            siov[j].iov_len = lens[j];
            let h = &mut smsgs[j].msg_hdr;
            // The reply goes to the address the query came from, read in
            // place from the receive headers.
            h.msg_name = (&raw mut names[from[j]]).cast();
            h.msg_namelen = rmsgs[from[j]].msg_hdr.msg_namelen;
            h.msg_iov = &raw mut siov[j];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
            smsgs[j].msg_len = 0;
        }
        let mut sent = 0usize;
        while sent < nsend {
            // SAFETY: entries sent..nsend point at live buffers of this frame.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_sendmmsg,
                    fd,
                    smsgs.as_mut_ptr().add(sent),
                    (nsend - sent) as libc::c_uint,
                    0,
                )
            };
            if r <= 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                // Drop this datagram (e.g. unreachable destination) and go on.
                tracing::debug!(error = %e, "udp send error");
                sent += 1;
                continue;
            }
            sent += r as usize;
        }
    }
}

/// Decode a kernel-filled socket address.
fn to_socket_addr(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(ss.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in, and
            // sockaddr_storage is larger and suitably aligned.
            let a: &libc::sockaddr_in = unsafe { &*(ss as *const _ as *const libc::sockaddr_in) };
            Some(SocketAddr::from((
                std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let a: &libc::sockaddr_in6 = unsafe { &*(ss as *const _ as *const libc::sockaddr_in6) };
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                std::net::Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}
