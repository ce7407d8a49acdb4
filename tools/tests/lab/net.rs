//! Network namespaces, veth pairs, NAT routers and nftables rules, built with the
//! `ip` and `nft` tools. Every name starts with a per-process prefix; [`Topology`]
//! deletes its namespaces when dropped, and [`remove_stale`] deletes those of lab
//! runs whose process is gone.

use std::process::{Command, Stdio};

/// Address of the "public internet" server (coturn and the signaling server).
pub const SERVER_IP: &str = "10.99.0.1";

/// Every lab namespace name starts with this, then the owning process id.
const PREFIX: &str = "rtcl";

/// How a player's router treats traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatKind {
    /// Masquerade that keeps the source port: the same public port for every
    /// destination (endpoint-independent mapping), so STUN's answer works for peers.
    Cone,
    /// Masquerade with a random port per connection (`fully-random`): a symmetric
    /// NAT, the mapping STUN sees is useless for peers.
    Symmetric,
    /// Cone NAT plus a firewall that drops all UDP except to the server.
    Firewall,
}

/// Run a command; an error names the command and its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Run `ip` inside namespace `ns`.
pub fn ip(ns: &str, args: &[&str]) -> Result<String, String> {
    let mut full = vec!["-n", ns];
    full.extend_from_slice(args);
    run("ip", &full)
}

/// Run a command inside namespace `ns`.
pub fn exec(ns: &str, program: &str, args: &[&str]) -> Result<String, String> {
    let mut full = vec!["netns", "exec", ns, program];
    full.extend_from_slice(args);
    run("ip", &full)
}

/// Load an nftables ruleset into namespace `ns`.
pub fn nft(ns: &str, ruleset: &str) -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("{ns}.nft"));
    std::fs::write(&dir, ruleset).map_err(|e| format!("cannot write {dir:?}: {e}"))?;
    let path = dir.to_string_lossy().into_owned();
    let result = exec(ns, "nft", &["-f", &path]).map(|_| ());
    let _ = std::fs::remove_file(&dir);
    result
}

/// Delete the namespaces of lab runs whose process no longer exists (a run killed
/// before its cleanup, e.g. by a CI timeout).
pub fn remove_stale() {
    let Ok(list) = run("ip", &["netns", "list"]) else {
        return;
    };
    for line in list.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
        if !alive || pid.is_empty() {
            let _ = run("ip", &["netns", "del", name]);
        }
    }
}

/// The lab's namespaces: one public one, and per player a router and a host.
#[derive(Debug)]
pub struct Topology {
    prefix: String,
    namespaces: Vec<String>,
    players: usize,
}

impl Topology {
    /// Build the public namespace and one NAT'd player per entry of `nats`.
    pub fn build(nats: &[NatKind]) -> Result<Topology, String> {
        remove_stale();
        let mut topo = Topology {
            prefix: format!("{PREFIX}{}", std::process::id()),
            namespaces: Vec::new(),
            players: nats.len(),
        };
        // On error the partly built topology is dropped here, which removes it.
        let public = topo.add_namespace("pub")?;
        ip(&public, &["link", "add", "br0", "type", "bridge"])?;
        ip(
            &public,
            &["addr", "add", &format!("{SERVER_IP}/24"), "dev", "br0"],
        )?;
        ip(&public, &["link", "set", "br0", "up"])?;
        for (i, &nat) in nats.iter().enumerate() {
            topo.add_player(i, nat)?;
        }
        Ok(topo)
    }

    /// The public namespace (servers).
    pub fn public(&self) -> String {
        format!("{}-pub", self.prefix)
    }

    /// Player `i`'s host namespace.
    pub fn host(&self, i: usize) -> String {
        format!("{}-h{i}", self.prefix)
    }

    /// Player `i`'s router namespace.
    pub fn router(&self, i: usize) -> String {
        format!("{}-r{i}", self.prefix)
    }

    /// Number of players.
    pub fn players(&self) -> usize {
        self.players
    }

    fn add_namespace(&mut self, suffix: &str) -> Result<String, String> {
        let name = format!("{}-{suffix}", self.prefix);
        run("ip", &["netns", "add", &name])?;
        self.namespaces.push(name.clone());
        ip(&name, &["link", "set", "lo", "up"])?;
        Ok(name)
    }

    fn add_player(&mut self, i: usize, nat: NatKind) -> Result<(), String> {
        let public = self.public();
        let router = self.add_namespace(&format!("r{i}"))?;
        let host = self.add_namespace(&format!("h{i}"))?;
        let wan_ip = format!("10.99.0.{}", 10 + i);
        let lan_net = format!("192.168.{}", 10 + i);

        // Router WAN <-> public bridge.
        let bridge_port = format!("p{i}");
        ip(
            &router,
            &[
                "link",
                "add",
                "wan",
                "type",
                "veth",
                "peer",
                "name",
                &bridge_port,
                "netns",
                &public,
            ],
        )?;
        ip(&public, &["link", "set", &bridge_port, "master", "br0"])?;
        ip(&public, &["link", "set", &bridge_port, "up"])?;
        ip(
            &router,
            &["addr", "add", &format!("{wan_ip}/24"), "dev", "wan"],
        )?;
        ip(&router, &["link", "set", "wan", "up"])?;

        // Router LAN <-> host.
        ip(
            &router,
            &[
                "link", "add", "lan", "type", "veth", "peer", "name", "eth0", "netns", &host,
            ],
        )?;
        ip(
            &router,
            &["addr", "add", &format!("{lan_net}.1/24"), "dev", "lan"],
        )?;
        ip(&router, &["link", "set", "lan", "up"])?;
        ip(
            &host,
            &["addr", "add", &format!("{lan_net}.2/24"), "dev", "eth0"],
        )?;
        ip(&host, &["link", "set", "eth0", "up"])?;
        ip(
            &host,
            &["route", "add", "default", "via", &format!("{lan_net}.1")],
        )?;
        // /proc/sys/net shows the namespace of the writer (no procps needed).
        exec(
            &router,
            "sh",
            &["-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"],
        )?;
        nft(&router, &router_rules(nat))
    }

    /// Drop `percent` % of the packets the router of player `i` forwards, in both
    /// directions (nftables `numgen random`).
    pub fn set_loss(&self, i: usize, percent: u32) -> Result<(), String> {
        let router = self.router(i);
        let _ = exec(&router, "nft", &["delete", "table", "ip", "lab_loss"]);
        if percent == 0 {
            return Ok(());
        }
        nft(
            &router,
            &format!(
                "table ip lab_loss {{\n  chain forward {{\n    type filter hook forward priority -10; policy accept;\n    numgen random mod 100 < {percent} drop\n  }}\n}}\n"
            ),
        )
    }

    /// Cut player `i` off (`true`) or reconnect it (`false`): its router drops every
    /// packet it would forward, both ways — WebRTC, STUN/TURN and the signaling
    /// server's TCP connection alike (TCP retransmits once the cut ends).
    pub fn set_cut_off(&self, i: usize, cut: bool) -> Result<(), String> {
        let router = self.router(i);
        let _ = exec(&router, "nft", &["delete", "table", "ip", "lab_cut"]);
        if !cut {
            return Ok(());
        }
        nft(
            &router,
            "table ip lab_cut {\n  chain forward {\n    type filter hook forward priority -20; policy drop;\n  }\n}\n",
        )
    }

    /// Give player `i`'s host a new address in its LAN (`.2` becomes `.3`), as
    /// when a device moves to another network: the old address goes first, so
    /// every connection made from it is dead (the router still forwards its
    /// packets out, but the answers find no one).
    pub fn change_host_address(&self, i: usize) -> Result<(), String> {
        let host = self.host(i);
        let lan_net = format!("192.168.{}", 10 + i);
        ip(
            &host,
            &["addr", "del", &format!("{lan_net}.2/24"), "dev", "eth0"],
        )?;
        ip(
            &host,
            &["addr", "add", &format!("{lan_net}.3/24"), "dev", "eth0"],
        )?;
        ip(
            &host,
            &[
                "route",
                "replace",
                "default",
                "via",
                &format!("{lan_net}.1"),
            ],
        )?;
        Ok(())
    }

    /// Forget every connection the router of player `i` tracks (its NAT mappings).
    pub fn flush_conntrack(&self, i: usize) -> Result<String, String> {
        exec(&self.router(i), "conntrack", &["-F"])
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for name in self.namespaces.iter().rev() {
            let _ = run("ip", &["netns", "del", name]);
        }
    }
}

/// The router's nftables ruleset. Unsolicited packets from the WAN are dropped in
/// the input hook, as home routers do: dropping them there also keeps conntrack from
/// recording them. Otherwise a peer's early check toward our public port leaves an
/// inbound entry that holds that port, our own outgoing check then gets a new
/// random port, and the NAT behaves like a symmetric one (seen in this lab).
fn router_rules(nat: NatKind) -> String {
    let masquerade = match nat {
        NatKind::Symmetric => "masquerade fully-random",
        NatKind::Cone | NatKind::Firewall => "masquerade",
    };
    let firewall = match nat {
        NatKind::Firewall => format!(
            "    iifname \"lan\" meta l4proto udp ip daddr != {SERVER_IP} drop\n    iifname \"wan\" meta l4proto udp ip saddr != {SERVER_IP} drop\n"
        ),
        NatKind::Cone | NatKind::Symmetric => String::new(),
    };
    format!(
        "table ip lab {{
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    oifname \"wan\" {masquerade}
  }}
  chain forward {{
    type filter hook forward priority filter; policy accept;
{firewall}  }}
  chain input {{
    type filter hook input priority filter; policy accept;
    iifname \"wan\" ct state new drop
  }}
}}
"
    )
}
