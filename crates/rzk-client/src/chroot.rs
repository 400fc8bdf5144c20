//! A chroot suffix in the connect string (`"h:p,h:p/app"`), as the Java client treats it: every
//! path a request names is taken relative to the chroot, and the paths the server answers with
//! (a created node's path, a watch event's path) are given back relative to it.

use rzk_proto::{MultiResult, Request, Response};

use crate::ClientError;

/// Validates the chroot part of a connect string (from its first `/`). `/` alone means none,
/// as in the Java client; anything else must be a valid absolute path.
pub(crate) fn parse(chroot: &str) -> Result<Option<String>, ClientError> {
    if chroot == "/" {
        return Ok(None);
    }
    let invalid = |why: &str| {
        Err(ClientError::InvalidArgument(format!(
            "invalid chroot {chroot:?} in the connect string: {why}"
        )))
    };
    if chroot.ends_with('/') {
        return invalid("it must not end with /");
    }
    for segment in chroot[1..].split('/') {
        match segment {
            "" => return invalid("empty node name (//)"),
            "." | ".." => return invalid("relative node names (. and ..) are not allowed"),
            _ if segment.contains('\0') => return invalid("it contains a NUL character"),
            _ => {}
        }
    }
    Ok(Some(chroot.to_owned()))
}

/// The server's path for a client path.
fn prepend(chroot: &str, path: &mut String) {
    if path == "/" {
        *path = chroot.to_owned();
    } else if path.starts_with('/') {
        path.insert_str(0, chroot);
    }
    // A path that does not start with / is left for the server to refuse as it would.
}

/// The client's path for a server path: the chroot itself is `/`; a path outside it (which
/// the server does not send) is left as it is.
pub(crate) fn strip(chroot: &str, path: &mut String) {
    if path == chroot {
        *path = "/".to_owned();
    } else if path
        .strip_prefix(chroot)
        .is_some_and(|rest| rest.starts_with('/'))
    {
        path.replace_range(..chroot.len(), "");
    }
}

/// Every path a request names, relative to the chroot. getEphemerals' prefix is sent as given,
/// as the Java client sends it.
pub(crate) fn request(chroot: &str, request: &mut Request) {
    let path = match request {
        Request::Create(r) | Request::Create2(r) | Request::CreateContainer(r) => &mut r.path,
        Request::CreateTtl(r) => &mut r.path,
        Request::Delete(r) => &mut r.path,
        Request::Exists(r) | Request::GetData(r) | Request::GetChildren(r) => &mut r.path,
        Request::GetChildren2(r) => &mut r.path,
        Request::SetData(r) => &mut r.path,
        Request::GetAcl(r) | Request::Sync(r) | Request::DeleteContainer(r) => &mut r.path,
        Request::GetAllChildrenNumber(r) => &mut r.path,
        Request::SetAcl(r) => &mut r.path,
        Request::Check(r) => &mut r.path,
        Request::CheckWatches(r) | Request::RemoveWatches(r) => &mut r.path,
        Request::AddWatch(r) => &mut r.path,
        Request::Multi(ops) | Request::MultiRead(ops) => {
            for op in ops {
                self::request(chroot, op);
            }
            return;
        }
        Request::SetWatches(w) | Request::SetWatches2(w) => {
            for list in [
                &mut w.data_watches,
                &mut w.exist_watches,
                &mut w.child_watches,
                &mut w.persistent_watches,
                &mut w.persistent_recursive_watches,
            ] {
                list.iter_mut().for_each(|path| prepend(chroot, path));
            }
            return;
        }
        Request::GetEphemerals(_)
        | Request::Ping
        | Request::Reconfig(_)
        | Request::Auth(_)
        | Request::Sasl(_)
        | Request::WhoAmI
        | Request::CloseSession => return,
    };
    prepend(chroot, path);
}

/// The paths a reply names (created nodes, sync), relative to the chroot.
pub(crate) fn response(chroot: &str, response: &mut Response) {
    match response {
        Response::Create { path } | Response::Create2 { path, .. } | Response::Sync { path } => {
            strip(chroot, path)
        }
        Response::Multi(results) => {
            for result in results {
                if let MultiResult::Create { path } | MultiResult::Create2 { path, .. } = result {
                    strip(chroot, path);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rzk_proto::records::{CreateRequest, PathRequest};

    #[test]
    fn paths_go_under_the_chroot_and_come_back_from_it() {
        let mut root = String::from("/");
        prepend("/app", &mut root);
        assert_eq!(root, "/app");
        let mut child = String::from("/a/b");
        prepend("/app", &mut child);
        assert_eq!(child, "/app/a/b");
        for (server, client) in [("/app", "/"), ("/app/a", "/a"), ("/apple", "/apple")] {
            let mut path = server.to_owned();
            strip("/app", &mut path);
            assert_eq!(path, client, "{server}");
        }
        let mut multi = Request::Multi(vec![Request::Create(CreateRequest {
            path: "/x".into(),
            ..Default::default()
        })]);
        request("/app", &mut multi);
        let Request::Multi(ops) = &multi else {
            unreachable!()
        };
        assert!(matches!(&ops[0], Request::Create(r) if r.path == "/app/x"));
        let mut ephemerals = Request::GetEphemerals(PathRequest { path: "/".into() });
        request("/app", &mut ephemerals);
        assert!(matches!(&ephemerals, Request::GetEphemerals(r) if r.path == "/"));
    }

    #[test]
    fn a_chroot_must_be_a_valid_path() {
        assert_eq!(parse("/").unwrap(), None);
        assert_eq!(parse("/app/x").unwrap(), Some("/app/x".to_owned()));
        for bad in ["/app/", "/a//b", "/a/./b", "/.."] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
