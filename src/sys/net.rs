//! Network calls: bringing an interface up, entering a network namespace.

use super::{check, Result, SysError};
use nix::errno::Errno;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Brings the interface `name` up in the current network namespace
/// (ioctl SIOCGIFFLAGS, then SIOCSIFFLAGS with IFF_UP).
pub fn link_up(name: &str) -> Result<()> {
    // SAFETY: socket with integer arguments.
    let sock = check("socket(AF_INET, SOCK_DGRAM)", unsafe {
        libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0)
    })?;
    // SAFETY: the descriptor was just returned by socket and is owned here.
    let sock = unsafe { OwnedFd::from_raw_fd(sock) };
    // SAFETY: ifreq is plain data; all-zero is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    if name.is_empty() || name.len() >= req.ifr_name.len() {
        return Err(SysError::new(format!("ifreq({name:?})"), Errno::EINVAL));
    }
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS fills the flags of a valid ifreq.
    check(&format!("ioctl({name:?}, SIOCGIFFLAGS)"), unsafe {
        libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut req)
    })?;
    // SAFETY: the flags member of the union was just filled by the kernel.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS reads a valid ifreq.
    check(&format!("ioctl({name:?}, SIOCSIFFLAGS, IFF_UP)"), unsafe {
        libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as _, &req)
    })
    .map(drop)
}

/// Opens a namespace file (e.g. /run/netns/NAME or /proc/self/ns/net).
pub fn open_ns(path: &str) -> Result<OwnedFd> {
    super::fs::open_cloexec(path, libc::O_RDONLY, &format!("open({path:?})"))
}

/// Enters the network namespace behind `fd`.
pub fn setns_net(fd: &OwnedFd, shown: &str) -> Result<()> {
    // SAFETY: setns with a valid descriptor and a namespace type.
    check(&format!("setns({shown:?}, CLONE_NEWNET)"), unsafe {
        libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET)
    })
    .map(drop)
}

/// Whether the host port `port` at `address` can be listened on now (TCP,
/// or UDP with `udp`): bound and released at once. The error is the
/// kernel's (EADDRINUSE when something listens there).
pub fn port_free(address: &str, port: u16, udp: bool) -> std::io::Result<()> {
    let at = (address, port);
    if udp {
        std::net::UdpSocket::bind(at).map(drop)
    } else {
        std::net::TcpListener::bind(at).map(drop)
    }
}

/// Enters the user namespace behind `fd` (the caller must be
/// single-threaded; it gets every capability in that namespace).
pub fn setns_user(fd: &OwnedFd, shown: &str) -> Result<()> {
    // SAFETY: setns with a valid descriptor and a namespace type.
    check(&format!("setns({shown:?}, CLONE_NEWUSER)"), unsafe {
        libc::setns(fd.as_raw_fd(), libc::CLONE_NEWUSER)
    })
    .map(drop)
}

/// A connected pair of unix stream sockets (close-on-exec).
pub fn socketpair() -> Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(|e| SysError::new("socketpair(AF_UNIX)", e))
}

/// Sends the descriptor `fd` over the unix socket `sock` (SCM_RIGHTS).
pub fn send_fd(sock: &OwnedFd, fd: &impl AsRawFd) -> Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let fds = [fd.as_raw_fd()];
    let iov = [std::io::IoSlice::new(b"f")];
    sendmsg::<()>(
        sock.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map(drop)
    .map_err(|e| SysError::new("sendmsg(SCM_RIGHTS)", e))
}

/// Receives one descriptor sent with `send_fd`, or (`Err`) the text the
/// sender wrote instead, up to end-of-file: why it has none to send.
pub fn recv_fd_or_text(sock: &OwnedFd) -> Result<std::result::Result<OwnedFd, String>> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
    let mut first = [0u8; 512];
    let mut iov = [std::io::IoSliceMut::new(&mut first)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| SysError::new("recvmsg(SCM_RIGHTS)", e))?;
    let got = msg.bytes;
    let mut fds = Vec::new();
    for c in msg
        .cmsgs()
        .map_err(|e| SysError::new("recvmsg(SCM_RIGHTS)", e))?
    {
        if let ControlMessageOwned::ScmRights(received) = c {
            // SAFETY: the kernel just installed these descriptors for us.
            fds.extend(
                received
                    .into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    // (The kernel dropped a descriptor it could not install, at the limit
    // of open files; more than one, the others are closed here.)
    if msg.flags.contains(MsgFlags::MSG_CTRUNC) {
        return Err(SysError::new("recvmsg(SCM_RIGHTS): cut off", Errno::EMFILE));
    }
    if !fds.is_empty() {
        return Ok(Ok(fds.swap_remove(0)));
    }
    let mut text = first[..got].to_vec();
    let mut rest = [0u8; 512];
    while let Ok(n @ 1..) = nix::unistd::read(sock.as_raw_fd(), &mut rest) {
        text.extend_from_slice(&rest[..n]);
    }
    Ok(Err(String::from_utf8_lossy(&text).trim().to_string()))
}
