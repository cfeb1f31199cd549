//! Dates as the commands show and read them: UTC, `YYYY-MM-DD`, by Howard
//! Hinnant's civil-date algorithms (no time-zone database needed).

/// Formats Unix milliseconds as `YYYY-MM-DD HH:MM:SS` UTC.
pub(crate) fn format_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a (year, month, day), after Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `YYYY-MM-DD` to Unix ms at 00:00 UTC.
pub(crate) fn parse_date(s: &str, flag: &str) -> anyhow::Result<i64> {
    let parts: Vec<i64> = s.split('-').filter_map(|p| p.parse().ok()).collect();
    let [y, m, d] = parts[..] else {
        return Err(super::usage(format!(
            "{flag} {s:?}: write the date as YYYY-MM-DD"
        )));
    };
    // Years beyond 9999 would overflow the arithmetic below.
    if !(1..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(super::usage(format!(
            "{flag} {s:?}: write the date as YYYY-MM-DD"
        )));
    }
    // Days from civil, after Howard Hinnant's algorithm.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Ok((era * 146_097 + doe - 719_468) * 86_400_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times_in_utc() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00");
        assert_eq!(format_time(1_700_000_000_000), "2023-11-14 22:13:20");
    }

    #[test]
    fn dates_parse_to_utc_midnight() {
        assert_eq!(parse_date("1970-01-01", "x").unwrap(), 0);
        assert_eq!(parse_date("2023-11-14", "x").unwrap(), 1_699_920_000_000);
        assert!(parse_date("14/11/2023", "x").is_err());
        // A year past 9999 is refused, not overflowed.
        assert!(parse_date("999999999999999-01-01", "x").is_err());
        assert_eq!(parse_date("9999-12-31", "x").unwrap(), 253_402_214_400_000);
    }
}
