//! Binding a shard's listening sockets.
//!
//! Invariants: every listener sets SO_REUSEPORT (each shard has its own accept queue on the same
//! address, and the kernel spreads new connections over them) and SO_REUSEADDR (a restart, or any
//! other server taking the port after Verge, is not refused while Verge's closed connections sit in
//! TIME_WAIT); the accept queue is `server.listen_backlog` long, capped by the kernel's somaxconn.

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{FromRawFd, IntoRawFd};

/// Binds and listens on `addr` for this shard's executor.
pub fn bind(addr: &str, backlog: u32) -> io::Result<glommio::net::TcpListener> {
    let sa: SocketAddr = addr.to_socket_addrs()?.next().ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, "address resolves to nothing")
    })?;
    let domain = if sa.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let sk = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    sk.set_reuse_address(true)?;
    sk.set_reuse_port(true)?;
    sk.bind(&SockAddr::from(sa))?;
    sk.listen(backlog.min(i32::MAX as u32) as i32)?;
    // SAFETY: the descriptor is a bound, listening TCP socket whose ownership moves to glommio.
    Ok(unsafe { glommio::net::TcpListener::from_raw_fd(sk.into_raw_fd()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebinds_while_closed_connections_wait() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let l = bind("127.0.0.1:0", 16).unwrap();
                let addr = l.local_addr().unwrap();
                // The server closes first, so its side of the connection sits in TIME_WAIT.
                let c = std::net::TcpStream::connect(addr).unwrap();
                let s = l.accept().await.unwrap();
                drop(s);
                let mut b = [0u8; 1];
                let _ = std::io::Read::read(&mut &c, &mut b);
                drop(c);
                drop(l);
                // A plain SO_REUSEADDR socket (as another server would open) binds the port again.
                let sk = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
                sk.set_reuse_address(true).unwrap();
                sk.bind(&SockAddr::from(addr)).unwrap();
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
