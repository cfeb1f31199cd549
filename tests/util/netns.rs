//! Hosts of a test's own: each a network namespace joined to this one by a
//! veth pair (an address of its own, and a link the test can cut), in
//! which a daemon runs under a UTS namespace with a hostname of its own, so
//! that quire takes it for another machine (its worker ids carry the
//! hostname; claims of another host are released by heartbeat, never by
//! process id). The hosts share this machine's filesystem, as hosts share a
//! network mount of the data dir. Needs root (CI and scripts/test.sh run as
//! root); removed, with their links, when dropped.

use std::process::Command;

/// One test host.
pub struct Host {
    /// Its hostname, as its daemon's worker ids show it.
    pub name: String,
    netns: String,
    /// The link's end on this side: cut it and the host is cut off.
    link: String,
    /// The address of this side of the link, where the host finds the
    /// server.
    pub gateway: String,
}

/// Runs `ip ARGS`; fails the test with its output if it fails.
fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Host {
    /// `n` hosts named `quire-host-1`, `quire-host-2`, …. Each test process
    /// (nextest runs one per test) takes its own names and a block of 16
    /// addresses in 10.200.0.0/16 from its process id, so that tests running
    /// at once do not meet.
    pub fn many(n: usize) -> Vec<Host> {
        assert!(n <= 4, "a test's address block holds four /30 links");
        let pid = std::process::id();
        let (block, base) = ((pid / 16) % 256, (pid % 16) * 16);
        (0..n)
            .map(|i| {
                let host = Host {
                    name: format!("quire-host-{}", i + 1),
                    netns: format!("quire-{pid}-{i}"),
                    link: format!("qv{pid}x{i}"),
                    gateway: format!("10.200.{block}.{}", base + 4 * i as u32 + 1),
                };
                let inside = format!("10.200.{block}.{}", base + 4 * i as u32 + 2);
                let peer = format!("qp{pid}x{i}");
                ip(&["netns", "add", &host.netns]);
                ip(&[
                    "link",
                    "add",
                    &host.link,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &peer,
                    "netns",
                    &host.netns,
                ]);
                ip(&[
                    "addr",
                    "add",
                    &format!("{}/30", host.gateway),
                    "dev",
                    &host.link,
                ]);
                ip(&["link", "set", &host.link, "up"]);
                let ns = ["-n", host.netns.as_str()];
                ip(&[
                    &ns[..],
                    &["addr", "add", &format!("{inside}/30"), "dev", &peer],
                ]
                .concat());
                ip(&[&ns[..], &["link", "set", &peer, "up"]].concat());
                ip(&[&ns[..], &["link", "set", "lo", "up"]].concat());
                host
            })
            .collect()
    }

    /// The program and arguments that run a command on this host: in its
    /// network namespace, with its hostname. The command follows.
    pub fn wrapper(&self) -> Vec<String> {
        [
            "ip",
            "netns",
            "exec",
            &self.netns,
            "unshare",
            "--uts",
            "sh",
            "-c",
            // Both exec: the command keeps the process id the test holds.
            r#"hostname "$0" && exec "$@""#,
            &self.name,
        ]
        .map(String::from)
        .to_vec()
    }

    /// Takes the host's link down: its packets go nowhere, its TCP
    /// connections stay open and retransmit, as across a cut cable.
    pub fn cut(&self) {
        ip(&["link", "set", &self.link, "down"]);
    }

    /// Brings the link back up.
    pub fn restore(&self) {
        ip(&["link", "set", &self.link, "up"]);
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        // Removing the namespace removes the link's other end, and so the
        // link.
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .output();
    }
}
