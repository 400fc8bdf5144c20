//! Java's `Date.toString()`, for the dates ZooKeeper's listings print (`dump`'s expiry times,
//! zkCli's `ctime` and `mtime`).

/// Java's `new Date(ms).toString()`: `EEE MMM dd HH:mm:ss zzz yyyy` in the local time zone
/// (the C library's, from TZ or /etc/localtime, which is where the JVM looks too).
pub fn java_date(epoch_ms: i64) -> String {
    const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let seconds = epoch_ms.div_euclid(1000) as libc::time_t;
    // SAFETY: `tm` is plain data that localtime_r fully initializes on success; `tzset`
    // and `localtime_r` are the reentrant libc calls for this, and `tm_zone` points at
    // static storage owned by the C library, read before any other time call.
    let (tm, zone) = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&seconds, &mut tm).is_null() {
            return format!("(unrepresentable time {epoch_ms} ms)");
        }
        let zone = if tm.tm_zone.is_null() {
            "UTC".to_owned()
        } else {
            std::ffi::CStr::from_ptr(tm.tm_zone)
                .to_string_lossy()
                .into_owned()
        };
        (tm, zone)
    };
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} {} {}",
        DAYS[tm.tm_wday.rem_euclid(7) as usize],
        MONTHS[tm.tm_mon.rem_euclid(12) as usize],
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        zone,
        i64::from(tm.tm_year) + 1900
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_epoch_as_java_date_in_utc() {
        // Only meaningful where the local zone is UTC (as on the test machines).
        if !java_date(0).ends_with(" UTC 1970") {
            return;
        }
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date(1_795_576_231_000), "Wed Nov 25 03:10:31 UTC 2026");
    }
}
