//! The connection family: PING, ECHO, SELECT, HELLO, AUTH, RESET, QUIT and CLIENT.
//!
//! These act on the connection's own state (`ClientState`) and run on its shard. CLIENT LIST
//! and CLIENT KILL look at every shard's clients and are coordinated from here.

use super::spec::{acl, flag, CommandSpec, Exec, Group};
use super::{int_arg, ConnCtx, NodeCmd, ERR_SYNTAX};
use crate::clients::valid_attr;
use crate::resp::Out;
use crate::session::ClientState;
use crate::shard::{unix_ms, Shard};

const CONN: u32 = flag::NOSCRIPT | flag::LOADING | flag::STALE;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec {
        exec: Exec::Conn(ping),
        tips: &["request_policy:all_shards", "response_policy:all_succeeded"],
        ..CommandSpec::new("ping", -1, flag::FAST, acl::CONNECTION, Group::Connection, "1.0.0",
            "Returns the server's liveliness response.", "O(1)", "[message:string]")
    },
    CommandSpec {
        exec: Exec::Conn(echo),
        ..CommandSpec::new("echo", 2, flag::LOADING | flag::STALE | flag::FAST, acl::CONNECTION, Group::Connection, "1.0.0",
            "Returns the given string.", "O(1)", "message:string")
    },
    CommandSpec {
        exec: Exec::Conn(select),
        ..CommandSpec::new("select", 2, flag::LOADING | flag::STALE | flag::FAST, acl::CONNECTION, Group::Connection, "1.0.0",
            "Changes the selected database.", "O(1)", "index:integer")
    },
    CommandSpec {
        exec: Exec::Conn(hello),
        history: &[("6.2.0", "`protover` made optional; when called without arguments the command reports the current connection's context.")],
        ..CommandSpec::new("hello", -1, CONN | flag::FAST | flag::NO_AUTH | flag::ALLOW_BUSY, acl::CONNECTION, Group::Connection, "6.0.0",
            "Handshakes with the server.", "O(1)",
            "[arguments=(protover:integer [AUTH auth=(username:string password:string)] [SETNAME clientname:string])]")
    },
    CommandSpec {
        exec: Exec::Conn(auth),
        history: &[("6.0.0", "Added ACL style (username and password).")],
        ..CommandSpec::new("auth", -2, CONN | flag::FAST | flag::NO_AUTH | flag::ALLOW_BUSY, acl::CONNECTION, Group::Connection, "1.0.0",
            "Authenticates the connection.", "O(N) where N is the number of passwords defined for the user",
            "[username:string]{since=6.0.0} password:string")
    },
    CommandSpec {
        exec: Exec::Conn(reset),
        ..CommandSpec::new("reset", 1, CONN | flag::FAST | flag::NO_AUTH | flag::ALLOW_BUSY, acl::CONNECTION, Group::Connection, "6.2.0",
            "Resets the connection.", "O(1)", "")
    },
    CommandSpec {
        exec: Exec::Conn(quit),
        doc_flags: &["deprecated"],
        deprecated: Some(("7.2.0", "just closing the connection")),
        ..CommandSpec::new("quit", -1, flag::ALLOW_BUSY | CONN | flag::FAST | flag::NO_AUTH, acl::CONNECTION, Group::Connection, "1.0.0",
            "Closes the connection.", "O(1)", "")
    },
    CommandSpec {
        subcommands: CLIENT_SUBCOMMANDS,
        ..CommandSpec::new("client", -2, 0, 0, Group::Connection, "2.4.0",
            "A container for client connection commands.", "Depends on subcommand.", "")
    },
];

static CLIENT_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec {
        exec: Exec::Conn(client_id),
        ..CommandSpec::new("id", 2, CONN, acl::CONNECTION, Group::Connection, "5.0.0",
            "Returns the unique client ID of the connection.", "O(1)", "")
    },
    CommandSpec {
        exec: Exec::Conn(client_setname),
        tips: &["request_policy:all_nodes", "response_policy:all_succeeded"],
        ..CommandSpec::new("setname", 3, CONN, acl::CONNECTION, Group::Connection, "2.6.9",
            "Sets the connection name.", "O(1)", "connection-name:string")
    },
    CommandSpec {
        exec: Exec::Conn(client_getname),
        ..CommandSpec::new("getname", 2, CONN, acl::CONNECTION, Group::Connection, "2.6.9",
            "Returns the name of the connection.", "O(1)", "")
    },
    CommandSpec {
        exec: Exec::Conn(client_info),
        tips: &["nondeterministic_output"],
        ..CommandSpec::new("info", 2, CONN, acl::CONNECTION, Group::Connection, "6.2.0",
            "Returns information about the connection.", "O(1)", "")
    },
    CommandSpec {
        exec: Exec::Node(NodeCmd::ClientList),
        tips: &["nondeterministic_output"],
        ..CommandSpec::new("list", -2, flag::ADMIN | CONN, acl::CONNECTION, Group::Connection, "2.4.0",
            "Lists open connections.", "O(N) where N is the number of client connections",
            "[TYPE client-type=(NORMAL|MASTER|REPLICA|PUBSUB)]{since=5.0.0} [ID client-id:integer...]{since=6.2.0}")
    },
    CommandSpec {
        exec: Exec::Conn(client_setinfo),
        tips: &["request_policy:all_nodes", "response_policy:all_succeeded"],
        ..CommandSpec::new("setinfo", 4, CONN, acl::CONNECTION, Group::Connection, "7.2.0",
            "Sets information specific to the client or connection.", "O(1)",
            "attr=(LIB-NAME libname:string|LIB-VER libver:string)")
    },
    CommandSpec {
        exec: Exec::Node(NodeCmd::ClientKill),
        ..CommandSpec::new("kill", -3, flag::ADMIN | CONN, acl::CONNECTION, Group::Connection, "2.4.0",
            "Terminates open connections.", "O(N) where N is the number of client connections",
            "filter=(old-format:string{display=ip:port,deprecated=2.8.12}|new-format=([ID client-id:integer]{since=2.8.12}|[TYPE client-type=(NORMAL|MASTER{since=3.2.0}|PRIMARY{since=8.0.0}|SLAVE|REPLICA{since=5.0.0}|PUBSUB)]{since=2.8.12}|[USER username:string]|[ADDR addr:string{display=ip:port}]|[LADDR laddr:string{display=ip:port}]{since=6.2.0}|[SKIPME skipme=(YES|NO)]|[MAXAGE maxage:integer]{since=8.0.0})...)")
    },
    CommandSpec {
        exec: Exec::Conn(client_help),
        ..CommandSpec::new("help", 2, flag::LOADING | flag::STALE, acl::CONNECTION, Group::Connection, "5.0.0",
            "Returns helpful text about the different subcommands.", "O(1)", "")
    },
];

fn ping(ctx: &mut ConnCtx<'_>, argv: &[&[u8]]) {
    if argv.len() > 2 {
        ctx.out.err(super::arity_error("ping"));
    } else if !ctx.client.resp3 && ctx.client.info.subs.borrow().total() > 0 {
        // A subscribed RESP2 connection reads messages as arrays: PING answers in kind.
        ctx.out.array(2);
        ctx.out.bulk(b"pong");
        ctx.out.bulk(argv.get(1).copied().unwrap_or_default());
    } else if argv.len() == 2 {
        ctx.out.bulk(argv[1]);
    } else {
        ctx.out.simple("PONG");
    }
}

fn echo(ctx: &mut ConnCtx<'_>, argv: &[&[u8]]) {
    ctx.out.bulk(argv[1]);
}

/// Valkey's `getIntFromObjectOrReply` without a custom message: an integer argument that
/// must fit in a C int; one that does not gets Valkey's range error.
pub fn int32_arg(out: &mut Out, arg: &[u8]) -> Option<i64> {
    let v = int_arg(out, arg)?;
    if v < i64::from(i32::MIN) || v > i64::from(i32::MAX) {
        out.err("value is out of range, value must between -2147483648 and 2147483647");
        return None;
    }
    Some(v)
}

fn select(ctx: &mut ConnCtx<'_>, argv: &[&[u8]]) {
    let Some(id) = int32_arg(ctx.out, argv[1]) else {
        return;
    };
    if id != 0 && ctx.shard.cluster.enabled() {
        ctx.out.err("SELECT is not allowed in cluster mode");
        return;
    }
    let databases = ctx.shard.config.borrow().databases;
    if id < 0 || id as usize >= databases {
        ctx.out.err("DB index is out of range");
        return;
    }
    ctx.client.db = id as usize;
    ctx.client.info.db.set(id as usize);
    ctx.out.ok();
}

/// Checks a password for `user` against `requirepass`; returns whether it is right.
fn check_password(shard: &Shard, user: &[u8], pass: &[u8]) -> bool {
    let config = shard.config.borrow();
    if user != b"default" {
        return false;
    }
    // No password configured: the default user takes any password (it is `nopass`).
    config.requirepass.is_empty() || constant_time_eq(&config.requirepass, pass)
}

/// Compares without an early exit, so the time taken does not reveal the matching prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

const WRONGPASS: &str = "-WRONGPASS invalid username-password pair or user is disabled.";

fn auth(ctx: &mut ConnCtx<'_>, argv: &[&[u8]]) {
    if argv.len() > 3 {
        ctx.out.err(ERR_SYNTAX);
        return;
    }
    let (user, pass): (&[u8], &[u8]) = if argv.len() == 2 {
        if ctx.shard.config.borrow().requirepass.is_empty() {
            ctx.out.err("AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
            return;
        }
        (b"default", argv[1])
    } else {
        (argv[1], argv[2])
    };
    if check_password(ctx.shard, user, pass) {
        ctx.client.authenticated = true;
        ctx.out.ok();
    } else {
        ctx.out.err(WRONGPASS);
    }
}

fn hello(ctx: &mut ConnCtx<'_>, argv: &[&[u8]]) {
    let mut ver = 0;
    let mut next = 1;
    if argv.len() >= 2 {
        match crate::util::parse_i64(argv[1]) {
            Some(v) => ver = v,
            None => {
                ctx.out
                    .err("Protocol version is not an integer or out of range");
                return;
            }
        }
        next = 2;
        if !(2..=3).contains(&ver) {
            ctx.out.err("-NOPROTO unsupported protocol version");
            return;
        }
    }
    let mut creds: Option<(&[u8], &[u8])> = None;
    let mut name: Option<&[u8]> = None;
    let mut j = next;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        let opt = argv[j];
        if super::opt_is(opt, "auth") && more >= 2 {
            creds = Some((argv[j + 1], argv[j + 2]));
            j += 2;
        } else if super::opt_is(opt, "setname") && more >= 1 {
            if !argv[j + 1].is_empty() && !valid_attr(argv[j + 1]) {
                ctx.out
                    .err("Client names cannot contain spaces, newlines or special characters.");
                return;
            }
            name = Some(argv[j + 1]);
            j += 1;
        } else {
            ctx.out.err(super::quoted_err(
                "Syntax error in HELLO option '",
                opt,
                "'",
            ));
            return;
        }
        j += 1;
    }
    if let Some((user, pass)) = creds {
        if check_password(ctx.shard, user, pass) {
            ctx.client.authenticated = true;
        } else {
            ctx.out.err(WRONGPASS);
            return;
        }
    }
    if ctx.client.auth_required(ctx.shard) {
        ctx.out.err("-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
        return;
    }
    if let Some(n) = name {
        *ctx.client.info.name.borrow_mut() = n.to_vec();
    }
    if ver != 0 {
        ctx.client.resp3 = ver == 3;
        ctx.out.resp3 = ctx.client.resp3;
        ctx.client.info.resp.set(ver as u8);
    }
    let out = &mut *ctx.out;
    out.map(7);
    out.bulk(b"server");
    out.bulk(b"corekey");
    out.bulk(b"version");
    out.bulk(super::server::REDIS_VERSION.as_bytes());
    out.bulk(b"proto");
    out.int(if ctx.client.resp3 { 3 } else { 2 });
    out.bulk(b"id");
    out.int(ctx.client.id as i64);
    out.bulk(b"mode");
    out.bulk(if ctx.shard.cluster.enabled() {
        b"cluster".as_slice()
    } else {
        b"standalone"
    });
    out.bulk(b"role");
    out.bulk(b"master");
    out.bulk(b"modules");
    out.array(0);
}

fn reset(ctx: &mut ConnCtx<'_>, _argv: &[&[u8]]) {
    super::pubsub::forget_client(ctx.shard, ctx.client);
    super::diagnostics::stop_monitor(ctx.shard, &ctx.client.info);
    // The session then drops the client's watches (that takes other shards).
    ctx.client.multi = None;
    let c = &mut *ctx.client;
    c.db = 0;
    c.info.db.set(0);
    c.resp3 = false;
    c.info.resp.set(2);
    ctx.out.resp3 = false;
    c.info.name.borrow_mut().clear();
    c.authenticated = ctx.shard.config.borrow().requirepass.is_empty();
    c.cluster = Default::default();
    ctx.out.simple("RESET");
}

fn quit(ctx: &mut ConnCtx<'_>, _argv: &[&[u8]]) {
    ctx.client.close_after_reply = true;
    ctx.client.info.closing.set(true);
    ctx.out.ok();
}

fn client_id(ctx: &mut ConnCtx<'_>, _argv: &[&[u8]]) {
    ctx.out.int(ctx.client.id as i64);
}

fn client_setname(ctx: &mut ConnCtx<'_>, argv: &[&[u8]]) {
    let name = argv[2];
    if !name.is_empty() && !valid_attr(name) {
        ctx.out
            .err("Client names cannot contain spaces, newlines or special characters.");
        return;
    }
    *ctx.client.info.name.borrow_mut() = name.to_vec();
    ctx.out.ok();
}

fn client_getname(ctx: &mut ConnCtx<'_>, _argv: &[&[u8]]) {
    let name = ctx.client.info.name.borrow();
    if name.is_empty() {
        ctx.out.null();
    } else {
        ctx.out.bulk(&name);
    }
}

fn client_info(ctx: &mut ConnCtx<'_>, _argv: &[&[u8]]) {
    let mut line = ctx.client.info.info_line(ctx.now_ms);
    line.push('\n');
    ctx.out.verbatim(line.as_bytes());
}

fn client_setinfo(ctx: &mut ConnCtx<'_>, argv: &[&[u8]]) {
    let (attr, val) = (argv[2], argv[3]);
    let slot = if super::opt_is(attr, "lib-name") {
        &ctx.client.info.lib_name
    } else if super::opt_is(attr, "lib-ver") {
        &ctx.client.info.lib_ver
    } else {
        ctx.out
            .err(super::quoted_err("Unrecognized option '", attr, "'"));
        return;
    };
    if !valid_attr(val) {
        ctx.out.err(super::quoted_err(
            "",
            attr,
            " cannot contain spaces, newlines or special characters.",
        ));
        return;
    }
    *slot.borrow_mut() = val.to_vec();
    ctx.out.ok();
}

/// Writes a HELP reply: Valkey's header line, our lines, and the HELP footer.
pub fn help_reply(out: &mut Out, cmd: &[u8], lines: &[&str]) {
    out.array(lines.len() + 3);
    out.simple(&format!(
        "{} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        String::from_utf8_lossy(cmd).to_ascii_uppercase()
    ));
    for l in lines {
        out.simple(l);
    }
    out.simple("HELP");
    out.simple("    Print this help.");
}

fn client_help(ctx: &mut ConnCtx<'_>, argv: &[&[u8]]) {
    help_reply(
        ctx.out,
        argv[0],
        &[
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are:",
            "    * ADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made from the specified address",
            "    * LADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made to specified local address",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Kill connections by type.",
            "    * USER <username>",
            "      Kill connections authenticated by <username>.",
            "    * SKIPME (YES|NO)",
            "      Skip killing current connection (default: yes).",
            "    * ID <client-id>",
            "      Kill connections by client id.",
            "    * MAXAGE <maxage>",
            "      Kill connections older than the specified age.",
            "LIST [options ...]",
            "    Return information about client connections. Options:",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Return clients of specified type.",
            "    * ID <client-id> [<client-id> ...]",
            "      Return clients of specified IDs only.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "SETINFO <option> <value>",
            "    Set client meta attr. Options are:",
            "    * LIB-NAME: the client lib name.",
            "    * LIB-VER: the client lib version.",
        ],
    );
}

/// Client types as CLIENT LIST/KILL name them; corekey has only normal clients so far.
fn client_type_known(name: &[u8]) -> bool {
    ["normal", "slave", "replica", "master", "primary", "pubsub"]
        .iter()
        .any(|t| super::opt_is(name, t))
}

fn is_normal(name: &[u8]) -> bool {
    super::opt_is(name, "normal")
}

/// CLIENT LIST [TYPE t] [ID id ...]: gathers the lines of every shard's clients.
pub async fn client_list(
    shard: super::multi::Via<'_>,
    _client: &mut ClientState,
    argv: &[&[u8]],
    out: &mut Out,
) {
    let mut ids: Option<Vec<u64>> = None;
    let mut only_normal = true;
    if argv.len() == 4 && super::opt_is(argv[2], "type") {
        if !client_type_known(argv[3]) {
            out.err(super::quoted_err("Unknown client type '", argv[3], "'"));
            return;
        }
        only_normal = is_normal(argv[3]);
    } else if argv.len() > 3 && super::opt_is(argv[2], "id") {
        let mut v = Vec::new();
        for a in &argv[3..] {
            match crate::util::parse_i64(a) {
                Some(id) => v.push(id as u64),
                None => {
                    out.err("Invalid client ID");
                    return;
                }
            }
        }
        ids = Some(v);
    } else if argv.len() != 2 {
        out.err(ERR_SYNTAX);
        return;
    }
    let now = unix_ms();
    let mut text = String::new();
    if !only_normal {
        out.verbatim(b"");
        return;
    }
    let mut found: Vec<(u64, String)> = Vec::new();
    for t in 0..shard.shards() {
        let ids = ids.clone();
        let mut lines: Vec<(u64, String)> = shard
            .call(t, move |s| {
                s.clients
                    .borrow()
                    .iter()
                    .filter(|(_, c)| ids.as_ref().is_none_or(|ids| ids.contains(&c.id)))
                    .map(|(_, c)| (c.id, c.info_line(now)))
                    .collect()
            })
            .await;
        found.append(&mut lines);
    }
    for line in list_order(&found, ids.as_deref()) {
        text.push_str(line);
        text.push('\n');
    }
    out.verbatim(text.as_bytes());
}

/// The lines CLIENT LIST prints: every client's, or with `ID`, one per requested id in the
/// order given (a repeated id repeats its line, an unknown one is skipped), as Valkey prints.
fn list_order<'a>(found: &'a [(u64, String)], ids: Option<&[u64]>) -> Vec<&'a str> {
    match ids {
        None => found.iter().map(|(_, l)| l.as_str()).collect(),
        Some(ids) => ids
            .iter()
            .filter_map(|id| found.iter().find(|(c, _)| c == id))
            .map(|(_, l)| l.as_str())
            .collect(),
    }
}

/// A CLIENT KILL filter.
#[derive(Debug, Clone, Default)]
struct KillFilter {
    addr: Option<String>,
    laddr: Option<String>,
    id: Option<u64>,
    normal_only: Option<bool>,
    /// TYPE master|primary (true) or slave|replica (false): replication links, which are
    /// not client connections here (`crate::repl::kill_links`).
    links: Option<bool>,
    user: Option<String>,
    skip_id: Option<u64>,
    max_age_s: Option<i64>,
}

/// CLIENT KILL, old form (`addr`) and new form (filters); kills across every shard.
pub async fn client_kill(
    shard: super::multi::Via<'_>,
    client: &mut ClientState,
    argv: &[&[u8]],
    out: &mut Out,
) {
    let mut f = KillFilter {
        skip_id: Some(client.id),
        ..KillFilter::default()
    };
    let old_form = argv.len() == 3;
    if old_form {
        f.addr = Some(String::from_utf8_lossy(argv[2]).into_owned());
        f.skip_id = None;
    } else {
        let mut i = 2;
        while i < argv.len() {
            let more = argv.len() > i + 1;
            let opt = argv[i];
            if !more {
                out.err(ERR_SYNTAX);
                return;
            }
            let v = argv[i + 1];
            if super::opt_is(opt, "id") {
                match crate::util::parse_i64(v) {
                    Some(id) if id >= 1 => f.id = Some(id as u64),
                    _ => {
                        out.err("client-id should be greater than 0");
                        return;
                    }
                }
            } else if super::opt_is(opt, "maxage") {
                match crate::util::parse_i64(v) {
                    Some(a) if a > 0 => f.max_age_s = Some(a),
                    Some(_) => {
                        out.err("maxage should be greater than 0");
                        return;
                    }
                    None => {
                        out.err("maxage is not an integer or out of range");
                        return;
                    }
                }
            } else if super::opt_is(opt, "type") {
                if !client_type_known(v) {
                    out.err(super::quoted_err("Unknown client type '", v, "'"));
                    return;
                }
                f.normal_only = Some(is_normal(v));
                if super::opt_is(v, "master") || super::opt_is(v, "primary") {
                    f.links = Some(true);
                } else if super::opt_is(v, "slave") || super::opt_is(v, "replica") {
                    f.links = Some(false);
                }
            } else if super::opt_is(opt, "addr") {
                f.addr = Some(String::from_utf8_lossy(v).into_owned());
            } else if super::opt_is(opt, "laddr") {
                f.laddr = Some(String::from_utf8_lossy(v).into_owned());
            } else if super::opt_is(opt, "user") {
                if v != b"default" {
                    out.err(super::quoted_err("No such user '", v, "'"));
                    return;
                }
                f.user = Some("default".into());
            } else if super::opt_is(opt, "skipme") {
                if super::opt_is(v, "yes") {
                    f.skip_id = Some(client.id);
                } else if super::opt_is(v, "no") {
                    f.skip_id = None;
                } else {
                    out.err(ERR_SYNTAX);
                    return;
                }
            } else {
                out.err(ERR_SYNTAX);
                return;
            }
            i += 2;
        }
    }
    let now = unix_ms();
    let me = client.id;
    let mut killed = 0;
    let mut kill_me = false;
    if let Some(primary_links) = f.links {
        // A node counts once, however many shard streams it has (Valkey has one client each).
        let mut nodes = Vec::new();
        for t in 0..shard.shards() {
            nodes.extend(
                shard
                    .call(t, move |s| crate::repl::kill_links(s, primary_links))
                    .await,
            );
        }
        nodes.sort_unstable();
        nodes.dedup();
        killed += nodes.len() as i64;
    }
    for t in 0..shard.shards() {
        let f = f.clone();
        let (n, me_hit) = shard
            .call(t, move |s| {
                let mut n = 0;
                let mut me_hit = false;
                for (_, c) in s.clients.borrow().iter() {
                    if f.addr.as_ref().is_some_and(|a| *a != c.addr)
                        || f.laddr.as_ref().is_some_and(|a| *a != c.laddr)
                        || f.normal_only == Some(false)
                        || f.id.is_some_and(|id| id != c.id)
                        || f.skip_id == Some(c.id)
                        || f.max_age_s
                            .is_some_and(|age| (now - c.created_ms) / 1000 < age)
                    {
                        continue;
                    }
                    if c.id == me {
                        me_hit = true;
                    } else {
                        c.kill();
                    }
                    n += 1;
                }
                (n, me_hit)
            })
            .await;
        killed += n;
        kill_me |= me_hit;
    }
    if old_form {
        if killed == 0 {
            out.err("No such client");
        } else {
            out.ok();
        }
    } else {
        out.int(killed);
    }
    if kill_me {
        client.close_after_reply = true;
        client.info.closing.set(true);
    }
}

#[cfg(test)]
mod tests {
    use super::{int32_arg, list_order};
    use crate::resp::Out;

    /// An integer outside C int range gets Valkey's range error, not the not-an-integer one.
    #[test]
    fn int32_range() {
        let mut out = Out::new(false);
        assert_eq!(int32_arg(&mut out, b"-2147483648"), Some(-2_147_483_648));
        assert_eq!(int32_arg(&mut out, b"2147483648"), None);
        assert_eq!(int32_arg(&mut out, b"x"), None);
        assert_eq!(
            out.buf,
            b"-ERR value is out of range, value must between -2147483648 and 2147483647\r\n\
              -ERR value is not an integer or out of range\r\n"
        );
    }

    /// CLIENT LIST ID prints in the order asked, a repeated id twice, unknown ids not at all.
    #[test]
    fn list_by_id_order() {
        let found = vec![(1, "one".to_string()), (2, "two".to_string())];
        assert_eq!(list_order(&found, None), ["one", "two"]);
        assert_eq!(
            list_order(&found, Some(&[2, 9, 1, 2])),
            ["two", "one", "two"]
        );
    }
}
