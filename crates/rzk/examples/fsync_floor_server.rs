//! The least a ZooKeeper server could do for a synchronous create: a measuring instrument for
//! `bench/compare.py --sync-write`, not a server.
//!
//! It speaks just enough of the protocol for `rzk bench --op create`: it answers a
//! ConnectRequest with a fixed session, and a create (opcode 1) with its own path once the
//! request's bytes are written to a preallocated file and `fdatasync`ed; a ping or a
//! closeSession is answered at once; anything else gets Unimplemented. Nothing is kept: no tree,
//! no sessions, no log to read back. One thread per connection, blocking system calls, no
//! runtime, so a create costs one read, one `pwrite` + `fdatasync` and one write, each side
//! sleeping while the disk works as it would with a real server.
//!
//! ```text
//! cargo run --release -p rzk --example fsync_floor_server -- 127.0.0.1:0 /tmp/floor
//! ```
//! prints `listening on <address>` once it accepts connections and serves until killed.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use rzk_proto::codec::{
    decode_connect_request, decode_request, encode_connect_response, encode_reply,
};
use rzk_proto::frame::{next_frame, JUTE_MAXBUFFER_DEFAULT, LENGTH_PREFIX_BYTES};
use rzk_proto::{ConnectResponse, ErrorCode, OpCode, Request, Response};

/// The file the creates are written to, preallocated as ZooKeeper's and rzk's logs are, so a
/// `fdatasync` flushes data and not the file's size.
const PREALLOCATED_BYTES: u64 = 64 * 1024 * 1024;

/// Requests' bytes go at the next offset, wrapping at the end of the preallocated file.
struct Log {
    file: File,
    next: u64,
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(address), Some(dir), None) = (args.next(), args.next(), args.next()) else {
        eprintln!("usage: fsync_floor_server <host:port> <directory for its file>");
        std::process::exit(2);
    };
    if let Err(error) = serve(&address, Path::new(&dir)) {
        eprintln!("fsync_floor_server: {error}");
        std::process::exit(1);
    }
}

fn serve(address: &str, dir: &Path) -> io::Result<()> {
    let path: PathBuf = dir.join("floor.log");
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("opening {}: {e}", path.display())))?;
    let zeros = vec![0u8; 1024 * 1024];
    for chunk in 0..PREALLOCATED_BYTES / zeros.len() as u64 {
        file.write_all_at(&zeros, chunk * zeros.len() as u64)?;
    }
    file.sync_all()?;
    let log = Arc::new(Mutex::new(Log { file, next: 0 }));
    let zxid = Arc::new(AtomicI64::new(0));
    let listener = TcpListener::bind(address)?;
    println!("listening on {}", listener.local_addr()?);
    io::stdout().flush()?;
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let (log, zxid) = (Arc::clone(&log), Arc::clone(&zxid));
        std::thread::spawn(move || {
            // A client that goes away ends its thread; nothing else depends on it.
            let _ = connection(stream, &log, &zxid);
        });
    }
    Ok(())
}

/// Reads one length-prefixed frame into `body`; `Ok(false)` at a clean end of the stream. A
/// negative length or one over the default `jute.maxbuffer` is refused as the server refuses it.
fn read_frame(stream: &mut TcpStream, body: &mut Vec<u8>) -> io::Result<bool> {
    let mut prefix = [0u8; LENGTH_PREFIX_BYTES];
    match stream.read_exact(&mut prefix) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(error) => return Err(error),
    }
    next_frame(&prefix, JUTE_MAXBUFFER_DEFAULT)
        .map_err(|error| io::Error::new(io::ErrorKind::InvalidData, error))?;
    // Checked just above: not negative, at most `JUTE_MAXBUFFER_DEFAULT`.
    body.resize(u32::from_be_bytes(prefix) as usize, 0);
    stream.read_exact(body)?;
    Ok(true)
}

fn connection(mut stream: TcpStream, log: &Mutex<Log>, zxid: &AtomicI64) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut body = Vec::new();
    let mut out = Vec::new();
    if !read_frame(&mut stream, &mut body)? {
        return Ok(());
    }
    let connect =
        decode_connect_request(&body).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    encode_connect_response(
        &ConnectResponse {
            protocol_version: 0,
            timeout_ms: connect.timeout_ms,
            session_id: 0x100,
            password: vec![0; 16],
            read_only: connect.read_only.map(|_| false),
        },
        &mut out,
    );
    stream.write_all(&out)?;
    while read_frame(&mut stream, &mut body)? {
        let (header, request) = decode_request(&body)
            .map_err(|(_, e)| io::Error::new(io::ErrorKind::InvalidData, e))?;
        let reply = match request {
            Request::Create(record) if header.op == OpCode::Create.code() => {
                let mut log = log.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if log.next + body.len() as u64 > PREALLOCATED_BYTES {
                    log.next = 0;
                }
                log.file.write_all_at(&body, log.next)?;
                log.file.sync_data()?;
                log.next += body.len() as u64;
                Ok(Response::Create { path: record.path })
            }
            Request::Ping | Request::CloseSession => Ok(Response::Empty),
            _ => Err(ErrorCode::Unimplemented),
        };
        out.clear();
        let zxid = zxid.fetch_add(1, Ordering::Relaxed) + 1;
        encode_reply(header.xid, zxid, &reply, &mut out);
        stream.write_all(&out)?;
        if header.op == OpCode::CloseSession.code() {
            return Ok(());
        }
    }
    Ok(())
}
