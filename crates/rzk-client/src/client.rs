//! The `Client` handle: connect, send requests, typed helpers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rzk_proto::codec::{decode_connect_response, encode_connect_request};
use rzk_proto::{Acl, ErrorCode};
use rzk_proto::{
    AddWatchMode, AddWatchRequest, AuthPacket, CheckVersionRequest, ClientInfo, ConnectRequest,
    CreateMode, CreateRequest, CreateTtlRequest, DeleteRequest, EventType, KeeperState,
    MultiResult, PathRequest, PathWatchRequest, RemoveWatchesRequest, Request, Response,
    SetAclRequest, SetDataRequest, Stat, WatcherType,
};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::task::JoinHandle;

use crate::connection::{read_frame, read_loop, write_loop, Outgoing, Shared};
use crate::{ClientError, WatchedEvent};

/// Requests in flight (sent or queued, reply not yet read) per client. A caller past this
/// waits for a reply to free a slot. ZooKeeper's server throttles a connection at 1000
/// outstanding requests (`globalOutstandingLimit`), so more would only queue there.
pub const PENDING_REQUESTS_MAX: usize = 1000;

/// Watch events and state changes buffered for the receiver of [`Client::take_events`]. When
/// it is full the reader task waits, which also holds back later replies: drain the receiver,
/// or drop it to discard events.
pub const EVENTS_MAX: usize = 4096;

/// Longest wait for one host to accept TCP and answer the handshake. The session timeout
/// is used when it is shorter.
pub const CONNECT_TIMEOUT_MAX: Duration = Duration::from_secs(10);

/// Password of a new session: 16 zero bytes, as the Java client sends.
const NEW_SESSION_PASSWORD_BYTES: usize = 16;

/// Handshake replies are small; anything bigger is not a ZooKeeper server.
const CONNECT_RESPONSE_BYTES_MAX: u32 = 1024;

/// What the server granted at connect time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub session_id: i64,
    /// The negotiated session timeout (the server clamps the requested one).
    pub timeout_ms: i32,
    pub password: Vec<u8>,
    /// The `host:port` that accepted the session.
    pub server: String,
    pub read_only: bool,
}

/// One ZooKeeper session over one TCP connection. Methods take `&self`, so a client can be
/// shared (`Arc<Client>`) and used for pipelined requests from many tasks.
pub struct Client {
    session: SessionInfo,
    outgoing: mpsc::Sender<Outgoing>,
    permits: Arc<Semaphore>,
    shared: Arc<Shared>,
    stop: Arc<watch::Sender<bool>>,
    events: Mutex<Option<mpsc::Receiver<WatchedEvent>>>,
    reader: Mutex<Option<JoinHandle<()>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// Split `"h1:p1,h2:p2"` into addresses, for callers that take no chroot (`rzk bench`).
pub fn parse_hosts(hosts: &str) -> Result<Vec<String>, ClientError> {
    if hosts.contains('/') {
        return Err(ClientError::InvalidArgument(format!(
            "connect string {hosts:?} has a chroot suffix, which is not taken here; remove the /path part"
        )));
    }
    host_list(hosts)
}

/// Split a connect string, `"h1:p1,h2:p2[/chroot]"`, into addresses and its chroot, as the Java
/// client's `ConnectStringParser` does (`/` alone is no chroot).
pub fn parse_connect_string(
    connect_string: &str,
) -> Result<(Vec<String>, Option<String>), ClientError> {
    match connect_string.split_once('/') {
        Some((hosts, _)) => {
            let chroot = crate::chroot::parse(&connect_string[hosts.len()..])?;
            Ok((host_list(hosts)?, chroot))
        }
        None => Ok((host_list(connect_string)?, None)),
    }
}

fn host_list(hosts: &str) -> Result<Vec<String>, ClientError> {
    let list: Vec<String> = hosts
        .split(',')
        .map(str::trim)
        .filter(|host| !host.is_empty())
        .map(|host| {
            if host
                .rsplit_once(':')
                .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
            {
                host.to_owned()
            } else {
                // ZooKeeper's default client port, as the Java client assumes.
                format!("{host}:2181")
            }
        })
        .collect();
    if list.is_empty() {
        return Err(ClientError::InvalidArgument(format!(
            "connect string {hosts:?} names no host; use host:port[,host:port...]"
        )));
    }
    Ok(list)
}

impl Client {
    /// Connect to the first host of `hosts` (`"h:p,h:p[/chroot]"`) that grants a session,
    /// asking for `session_timeout`. An `SyncConnected` event is queued on the event channel.
    /// With a chroot, every path is relative to it, as with the Java client.
    pub async fn connect(hosts: &str, session_timeout: Duration) -> Result<Client, ClientError> {
        let timeout_ms = i32::try_from(session_timeout.as_millis()).map_err(|_| {
            ClientError::InvalidArgument(format!(
                "session timeout {session_timeout:?} does not fit in an i32 of milliseconds"
            ))
        })?;
        let mut reasons = Vec::new();
        let (addresses, chroot) = parse_connect_string(hosts)?;
        for host in addresses {
            let attempt = tokio::time::timeout(
                session_timeout.min(CONNECT_TIMEOUT_MAX),
                handshake(&host, timeout_ms),
            )
            .await;
            match attempt {
                Ok(Ok((stream, session))) => return Ok(Client::start(stream, session, chroot)),
                Ok(Err(reason)) => reasons.push(format!("{host}: {reason}")),
                Err(_) => reasons.push(format!(
                    "{host}: no session within {} ms",
                    session_timeout.min(CONNECT_TIMEOUT_MAX).as_millis()
                )),
            }
        }
        Err(ClientError::Connect {
            hosts: hosts.to_owned(),
            reasons: reasons.join("; "),
        })
    }

    fn start(stream: TcpStream, session: SessionInfo, chroot: Option<String>) -> Client {
        let timeout = Duration::from_millis(u64::try_from(session.timeout_ms).unwrap_or(1).max(1));
        // The Java client's rule: declare the connection dead after 2/3 of the session
        // timeout without any packet, ping after 1/3 without sending (the paper's s/3, 2s/3).
        let read_timeout = timeout * 2 / 3;
        let ping_interval = timeout / 3;
        let (read, write) = stream.into_split();
        let shared = Arc::new(Shared::new(session.server.clone(), chroot));
        let (outgoing_tx, outgoing_rx) = mpsc::channel(PENDING_REQUESTS_MAX);
        let (events_tx, events_rx) = mpsc::channel(EVENTS_MAX);
        let (stop_tx, stop_rx) = watch::channel(false);
        let stop = Arc::new(stop_tx);
        // Capacity is EVENTS_MAX >= 1 and the channel is new: this cannot be full.
        let _ = events_tx.try_send(WatchedEvent {
            event_type: EventType::None,
            state: if session.read_only {
                KeeperState::ConnectedReadOnly
            } else {
                KeeperState::SyncConnected
            },
            path: None,
        });
        let writer = tokio::spawn(write_loop(
            write,
            outgoing_rx,
            shared.clone(),
            ping_interval,
            stop_rx,
        ));
        let reader = tokio::spawn(read_loop(
            read,
            shared.clone(),
            events_tx,
            read_timeout,
            stop.clone(),
        ));
        Client {
            session,
            outgoing: outgoing_tx,
            permits: Arc::new(Semaphore::new(PENDING_REQUESTS_MAX)),
            shared,
            stop,
            events: Mutex::new(Some(events_rx)),
            reader: Mutex::new(Some(reader)),
            writer: Mutex::new(Some(writer)),
        }
    }

    pub fn session(&self) -> &SessionInfo {
        &self.session
    }

    /// The receiver of watch events and state changes; `None` after the first call. See
    /// [`EVENTS_MAX`]: drain it, or drop it to discard events.
    pub fn take_events(&self) -> Option<mpsc::Receiver<WatchedEvent>> {
        lock(&self.events).take()
    }

    /// True until the connection ends (closed, lost or failed).
    pub fn is_alive(&self) -> bool {
        !*self.stop.borrow()
    }

    /// Send one request and wait for its reply. A server error is `ClientError::Keeper`.
    /// `Request::Ping` is answered by the writer's own pings and should not be sent here.
    pub async fn request(&self, mut request: Request) -> Result<Response, ClientError> {
        if let Some(chroot) = &self.shared.chroot {
            crate::chroot::request(chroot, &mut request);
        }
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| self.shared.lost_error())?;
        let (reply_tx, reply_rx) = oneshot::channel();
        self.outgoing
            .send(Outgoing {
                request,
                reply: reply_tx,
                permit,
            })
            .await
            .map_err(|_| self.shared.lost_error())?;
        let mut response = reply_rx.await.map_err(|_| self.shared.lost_error())??;
        if let Some(chroot) = &self.shared.chroot {
            crate::chroot::response(chroot, &mut response);
        }
        Ok(response)
    }

    /// End the session (closeSession), then the connection. A `Closed` event is queued
    /// before this returns. Closing a client whose connection is already gone is `Ok`.
    pub async fn close(&self) -> Result<(), ClientError> {
        self.shared.mark_closing();
        let result = if self.is_alive() {
            match self.request(Request::CloseSession).await {
                Ok(_) | Err(ClientError::ConnectionLost { .. }) => Ok(()),
                Err(error) => Err(error),
            }
        } else {
            Ok(())
        };
        let _ = self.stop.send(true);
        let reader = lock(&self.reader).take();
        if let Some(reader) = reader {
            // The reader ends on `stop`; it only queues the final event, which needs
            // space on the event channel (see EVENTS_MAX).
            let _ = reader.await;
        }
        let writer = lock(&self.writer).take();
        if let Some(writer) = writer {
            let _ = writer.await;
        }
        result
    }

    fn unexpected(&self, what: &str, response: Response) -> ClientError {
        ClientError::Protocol {
            server: self.session.server.clone(),
            reason: format!("{what} was answered with {response:?}"),
        }
    }

    /// create (op 1; op 19 for containers). TTL modes need [`Client::create_ttl`].
    pub async fn create(
        &self,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        mode: CreateMode,
    ) -> Result<String, ClientError> {
        if mode.is_ttl() {
            return Err(ClientError::InvalidArgument(format!(
                "create mode {mode:?} needs a TTL: use create_ttl"
            )));
        }
        let record = create_record(path, data, acl, mode);
        let request = if mode.is_container() {
            Request::CreateContainer(record)
        } else {
            Request::Create(record)
        };
        match self.request(request).await? {
            Response::Create { path } | Response::Create2 { path, .. } => Ok(path),
            other => Err(self.unexpected("create", other)),
        }
    }

    /// create2 (op 15; 19 for containers): the created path and its Stat.
    pub async fn create2(
        &self,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        mode: CreateMode,
    ) -> Result<(String, Stat), ClientError> {
        let record = create_record(path, data, acl, mode);
        let request = if mode.is_container() {
            Request::CreateContainer(record)
        } else {
            Request::Create2(record)
        };
        match self.request(request).await? {
            Response::Create2 { path, stat } => Ok((path, stat)),
            other => Err(self.unexpected("create2", other)),
        }
    }

    /// createTTL (op 21). `mode` must be one of the `*WithTtl` modes.
    pub async fn create_ttl(
        &self,
        path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        mode: CreateMode,
        ttl_ms: i64,
    ) -> Result<(String, Stat), ClientError> {
        let request = Request::CreateTtl(CreateTtlRequest {
            path: path.to_owned(),
            data: data.map(<[u8]>::to_vec),
            acl: acl.to_vec(),
            flags: mode.code(),
            ttl: ttl_ms,
        });
        match self.request(request).await? {
            Response::Create2 { path, stat } => Ok((path, stat)),
            other => Err(self.unexpected("createTTL", other)),
        }
    }

    /// delete; `version` -1 matches any version.
    pub async fn delete(&self, path: &str, version: i32) -> Result<(), ClientError> {
        self.request(Request::Delete(DeleteRequest {
            path: path.to_owned(),
            version,
        }))
        .await
        .map(|_| ())
    }

    /// exists: `None` for a missing node (the watch, if asked for, is still set).
    pub async fn exists(&self, path: &str, watch: bool) -> Result<Option<Stat>, ClientError> {
        match self.request(Request::Exists(path_watch(path, watch))).await {
            Ok(Response::Stat(stat)) => Ok(Some(stat)),
            Ok(other) => Err(self.unexpected("exists", other)),
            Err(ClientError::Keeper(ErrorCode::NoNode)) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// getData: the data (`None` when the node holds null) and its Stat.
    pub async fn get_data(
        &self,
        path: &str,
        watch: bool,
    ) -> Result<(Option<Vec<u8>>, Stat), ClientError> {
        match self
            .request(Request::GetData(path_watch(path, watch)))
            .await?
        {
            Response::GetData { data, stat } => Ok((data, stat)),
            other => Err(self.unexpected("getData", other)),
        }
    }

    /// setData; `version` -1 matches any version.
    pub async fn set_data(
        &self,
        path: &str,
        data: Option<&[u8]>,
        version: i32,
    ) -> Result<Stat, ClientError> {
        let request = Request::SetData(SetDataRequest {
            path: path.to_owned(),
            data: data.map(<[u8]>::to_vec),
            version,
        });
        match self.request(request).await? {
            Response::Stat(stat) => Ok(stat),
            other => Err(self.unexpected("setData", other)),
        }
    }

    /// getChildren (op 8): names in the server's order (unsorted).
    pub async fn get_children(&self, path: &str, watch: bool) -> Result<Vec<String>, ClientError> {
        match self
            .request(Request::GetChildren(path_watch(path, watch)))
            .await?
        {
            Response::GetChildren { children } => Ok(children),
            other => Err(self.unexpected("getChildren", other)),
        }
    }

    /// getChildren2 (op 12): names (unsorted) and the parent's Stat.
    pub async fn get_children2(
        &self,
        path: &str,
        watch: bool,
    ) -> Result<(Vec<String>, Stat), ClientError> {
        match self
            .request(Request::GetChildren2(path_watch(path, watch)))
            .await?
        {
            Response::GetChildren2 { children, stat } => Ok((children, stat)),
            other => Err(self.unexpected("getChildren2", other)),
        }
    }

    pub async fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat), ClientError> {
        match self.request(Request::GetAcl(path_only(path))).await? {
            Response::GetAcl { acl, stat } => Ok((acl, stat)),
            other => Err(self.unexpected("getACL", other)),
        }
    }

    /// setACL; `version` is the expected aclVersion, -1 for any.
    pub async fn set_acl(
        &self,
        path: &str,
        acl: &[Acl],
        version: i32,
    ) -> Result<Stat, ClientError> {
        let request = Request::SetAcl(SetAclRequest {
            path: path.to_owned(),
            acl: acl.to_vec(),
            version,
        });
        match self.request(request).await? {
            Response::Stat(stat) => Ok(stat),
            other => Err(self.unexpected("setACL", other)),
        }
    }

    /// check (op 13) on its own: Ok when `path` is at `version`.
    pub async fn check(&self, path: &str, version: i32) -> Result<(), ClientError> {
        self.request(Request::Check(CheckVersionRequest {
            path: path.to_owned(),
            version,
        }))
        .await
        .map(|_| ())
    }

    /// sync: returns once the server has caught up with the leader; the answer is the path.
    pub async fn sync(&self, path: &str) -> Result<String, ClientError> {
        match self.request(Request::Sync(path_only(path))).await? {
            Response::Sync { path } => Ok(path),
            other => Err(self.unexpected("sync", other)),
        }
    }

    /// Add an identity (e.g. `digest`, `user:password`). Unlike the Java client this waits
    /// for the answer. The server closes the connection after answering `AuthFailed`.
    pub async fn add_auth(&self, scheme: &str, auth: &[u8]) -> Result<(), ClientError> {
        self.request(Request::Auth(AuthPacket {
            auth_type: 0,
            scheme: scheme.to_owned(),
            auth: auth.to_vec(),
        }))
        .await
        .map(|_| ())
    }

    /// This session's ephemerals whose path starts with `prefix` ("/" for all).
    pub async fn get_ephemerals(&self, prefix: &str) -> Result<Vec<String>, ClientError> {
        match self
            .request(Request::GetEphemerals(path_only(prefix)))
            .await?
        {
            Response::GetEphemerals { ephemerals } => Ok(ephemerals),
            other => Err(self.unexpected("getEphemerals", other)),
        }
    }

    /// Number of descendants of `path` (not counting itself).
    pub async fn get_all_children_number(&self, path: &str) -> Result<i32, ClientError> {
        match self
            .request(Request::GetAllChildrenNumber(path_only(path)))
            .await?
        {
            Response::AllChildrenNumber { total } => Ok(total),
            other => Err(self.unexpected("getAllChildrenNumber", other)),
        }
    }

    /// addWatch: a persistent (or persistent-recursive) watch, removed only by
    /// `remove_watches(path, WatcherType::Any)` or the end of the session.
    pub async fn add_watch(&self, path: &str, mode: AddWatchMode) -> Result<(), ClientError> {
        let request = Request::AddWatch(AddWatchRequest {
            path: path.to_owned(),
            mode: mode.code(),
        });
        match self.request(request).await? {
            Response::ErrorBody { err: 0 } | Response::Empty => Ok(()),
            Response::ErrorBody { err } => Err(ClientError::Keeper(
                ErrorCode::from_i32(err).unwrap_or(ErrorCode::SystemError),
            )),
            other => Err(self.unexpected("addWatch", other)),
        }
    }

    /// removeWatches on the server: `NoWatcher` when none of that type is set on `path`.
    /// The server sends no `*WatchRemoved` event; the Java client makes those up from its
    /// own watch table, which this client does not keep.
    pub async fn remove_watches(
        &self,
        path: &str,
        watcher_type: WatcherType,
    ) -> Result<(), ClientError> {
        self.request(Request::RemoveWatches(RemoveWatchesRequest {
            path: path.to_owned(),
            watcher_type: watcher_type.code(),
        }))
        .await
        .map(|_| ())
    }

    /// multi: all-or-nothing. The outer reply is Ok even when an op failed; look at the
    /// results (`MultiResult::Error`) for which one did.
    pub async fn multi(&self, ops: Vec<Request>) -> Result<Vec<MultiResult>, ClientError> {
        match self.request(Request::Multi(ops)).await? {
            Response::Multi(results) => Ok(results),
            other => Err(self.unexpected("multi", other)),
        }
    }

    /// whoAmI: the identities the server has for this session.
    pub async fn who_am_i(&self) -> Result<Vec<ClientInfo>, ClientError> {
        match self.request(Request::WhoAmI).await? {
            Response::WhoAmI { clients } => Ok(clients),
            other => Err(self.unexpected("whoAmI", other)),
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        // Without close(), the session lingers on the server until it expires, as with a
        // Java client that exits without closing.
        let _ = self.stop.send(true);
        for handle in [lock(&self.reader).take(), lock(&self.writer).take()]
            .into_iter()
            .flatten()
        {
            handle.abort();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn path_watch(path: &str, watch: bool) -> PathWatchRequest {
    PathWatchRequest {
        path: path.to_owned(),
        watch,
    }
}

fn path_only(path: &str) -> PathRequest {
    PathRequest {
        path: path.to_owned(),
    }
}

fn create_record(path: &str, data: Option<&[u8]>, acl: &[Acl], mode: CreateMode) -> CreateRequest {
    CreateRequest {
        path: path.to_owned(),
        data: data.map(<[u8]>::to_vec),
        acl: acl.to_vec(),
        flags: mode.code(),
    }
}

/// TCP connect, send a ConnectRequest for a new session, read the ConnectResponse.
async fn handshake(host: &str, timeout_ms: i32) -> Result<(TcpStream, SessionInfo), String> {
    let mut stream = TcpStream::connect(host)
        .await
        .map_err(|error| format!("TCP connect failed: {error}"))?;
    // Small request/reply packets: do not let Nagle hold them back.
    stream
        .set_nodelay(true)
        .map_err(|error| format!("setting TCP_NODELAY failed: {error}"))?;
    let mut bytes = Vec::new();
    encode_connect_request(
        &ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms,
            session_id: 0,
            password: vec![0; NEW_SESSION_PASSWORD_BYTES],
            read_only: Some(false),
        },
        &mut bytes,
    );
    stream
        .write_all(&bytes)
        .await
        .map_err(|error| format!("sending the connect request failed: {error}"))?;
    let body = read_frame(&mut stream, CONNECT_RESPONSE_BYTES_MAX)
        .await?
        .ok_or_else(|| {
            "the server closed the connection during the handshake (is it serving? too many connections from this address?)".to_owned()
        })?;
    let response = decode_connect_response(&body)
        .map_err(|error| format!("undecodable connect response: {error}"))?;
    if response.timeout_ms <= 0 {
        return Err(
            "the server refused the session (timeout 0: expired or not serving)".to_owned(),
        );
    }
    let server = stream
        .peer_addr()
        .map(|address| address.to_string())
        .unwrap_or_else(|_| host.to_owned());
    Ok((
        stream,
        SessionInfo {
            session_id: response.session_id,
            timeout_ms: response.timeout_ms,
            password: response.password,
            server,
            read_only: response.read_only.unwrap_or(false),
        },
    ))
}
