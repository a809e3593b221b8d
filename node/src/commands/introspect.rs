//! COMMAND and its subcommands: rendered from the command table, as Valkey renders its own
//! (COMMAND INFO's ten fields, COMMAND DOCS' maps, key specs, flags, ACL categories).

use super::docs::{self, ArgDoc};
use super::spec::{acl, flag, keyflag, BeginSearch, CommandSpec, FindKeys};
use super::{key_positions, registry, ConnCtx, Lookup, Resolved, ERR_SYNTAX};
use crate::resp::Out;
use crate::util::glob_match;

/// COMMAND INFO's flag set of a command, with `movablekeys` where Valkey puts it.
fn flag_names(spec: &CommandSpec) -> Vec<&'static str> {
    let mut v = Vec::new();
    for &(f, name) in flag::NAMES {
        if f == flag::ALLOW_BUSY && spec.movable_keys() {
            v.push("movablekeys");
        }
        if spec.flags & f != 0 {
            v.push(name);
        }
    }
    if spec.movable_keys() && !v.contains(&"movablekeys") {
        v.push("movablekeys");
    }
    v
}

fn status_set(out: &mut Out, items: &[&str]) {
    out.set(items.len());
    for i in items {
        out.simple(i);
    }
}

fn key_specs(out: &mut Out, spec: &CommandSpec) {
    out.set(spec.keys.len());
    for ks in spec.keys {
        out.map(3 + usize::from(ks.notes.is_some()));
        if let Some(n) = ks.notes {
            out.bulk(b"notes");
            out.bulk(n.as_bytes());
        }
        out.bulk(b"flags");
        let names: Vec<&str> = keyflag::NAMES
            .iter()
            .filter(|(f, _)| ks.flags & f != 0)
            .map(|(_, n)| *n)
            .collect();
        status_set(out, &names);
        out.bulk(b"begin_search");
        out.map(2);
        out.bulk(b"type");
        match ks.begin {
            BeginSearch::Index(pos) => {
                out.bulk(b"index");
                out.bulk(b"spec");
                out.map(1);
                out.bulk(b"index");
                out.int(i64::from(pos));
            }
            BeginSearch::Keyword { keyword, startfrom } => {
                out.bulk(b"keyword");
                out.bulk(b"spec");
                out.map(2);
                out.bulk(b"keyword");
                out.bulk(keyword.as_bytes());
                out.bulk(b"startfrom");
                out.int(i64::from(startfrom));
            }
            BeginSearch::Unknown => {
                out.bulk(b"unknown");
                out.bulk(b"spec");
                out.map(0);
            }
        }
        out.bulk(b"find_keys");
        out.map(2);
        out.bulk(b"type");
        match ks.find {
            FindKeys::Range {
                lastkey,
                step,
                limit,
            } => {
                out.bulk(b"range");
                out.bulk(b"spec");
                out.map(3);
                out.bulk(b"lastkey");
                out.int(i64::from(lastkey));
                out.bulk(b"keystep");
                out.int(i64::from(step));
                out.bulk(b"limit");
                out.int(i64::from(limit));
            }
            FindKeys::Keynum {
                keynumidx,
                firstkey,
                step,
            } => {
                out.bulk(b"keynum");
                out.bulk(b"spec");
                out.map(3);
                out.bulk(b"keynumidx");
                out.int(i64::from(keynumidx));
                out.bulk(b"firstkey");
                out.int(i64::from(firstkey));
                out.bulk(b"keystep");
                out.int(i64::from(step));
            }
            FindKeys::Unknown => {
                out.bulk(b"unknown");
                out.bulk(b"spec");
                out.map(0);
            }
        }
    }
}

/// One command's COMMAND INFO entry (Valkey's `addReplyCommandInfo`).
pub fn command_info(out: &mut Out, r: &'static Resolved) {
    let spec = r.spec;
    let ((first, last, step), _) = spec.legacy_range();
    out.array(10);
    out.bulk(r.fullname.as_bytes());
    out.int(i64::from(spec.arity));
    status_set(out, &flag_names(spec));
    out.int(i64::from(first));
    out.int(i64::from(last));
    out.int(i64::from(step));
    let cats = spec.acl_categories();
    let names: Vec<String> = acl::NAMES
        .iter()
        .filter(|(c, _)| cats & c != 0)
        .map(|(_, n)| format!("@{n}"))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    status_set(out, &names);
    out.set(spec.tips.len());
    for t in spec.tips {
        out.bulk(t.as_bytes());
    }
    key_specs(out, spec);
    let subs: Vec<&'static Resolved> = registry().subcommands_of(r).collect();
    if subs.is_empty() {
        out.set(0);
    } else {
        out.array(subs.len());
        for s in subs {
            command_info(out, s);
        }
    }
}

fn arg_docs(out: &mut Out, args: &[ArgDoc]) {
    out.array(args.len());
    for a in args {
        let nested = a.kind == "oneof" || a.kind == "block";
        let flags: Vec<&str> = [(a.optional, "optional"), (a.multiple, "multiple")]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, n)| *n)
            .collect();
        let len = 2
            + usize::from(!nested)
            + usize::from(a.key_spec_index.is_some())
            + usize::from(a.token.is_some())
            + usize::from(a.since.is_some())
            + usize::from(a.deprecated_since.is_some())
            + usize::from(!flags.is_empty())
            + usize::from(nested);
        out.map(len);
        out.bulk(b"name");
        out.bulk(a.name.as_bytes());
        out.bulk(b"type");
        out.bulk(a.kind.as_bytes());
        if !nested {
            out.bulk(b"display_text");
            out.bulk(a.display.as_deref().unwrap_or(&a.name).as_bytes());
        }
        if let Some(i) = a.key_spec_index {
            out.bulk(b"key_spec_index");
            out.int(i as i64);
        }
        if let Some(t) = &a.token {
            out.bulk(b"token");
            out.bulk(t.as_bytes());
        }
        if let Some(v) = &a.since {
            out.bulk(b"since");
            out.bulk(v.as_bytes());
        }
        if let Some(v) = &a.deprecated_since {
            out.bulk(b"deprecated_since");
            out.bulk(v.as_bytes());
        }
        if !flags.is_empty() {
            out.bulk(b"flags");
            status_set(out, &flags);
        }
        if nested {
            out.bulk(b"arguments");
            arg_docs(out, &a.args);
        }
    }
}

/// One command's COMMAND DOCS entry (Valkey's `addReplyCommandDocs`).
pub fn command_docs(out: &mut Out, r: &'static Resolved) {
    let spec = r.spec;
    let args = docs::parse(spec.syntax).unwrap_or_default();
    let subs: Vec<&'static Resolved> = registry().subcommands_of(r).collect();
    let len = 4
        + usize::from(!spec.doc_flags.is_empty())
        + 2 * usize::from(spec.deprecated.is_some())
        + usize::from(!spec.history.is_empty())
        + usize::from(!args.is_empty())
        + usize::from(!subs.is_empty());
    out.map(len);
    out.bulk(b"summary");
    out.bulk(spec.summary.as_bytes());
    out.bulk(b"since");
    out.bulk(spec.since.as_bytes());
    out.bulk(b"group");
    out.bulk(spec.group.name().as_bytes());
    out.bulk(b"complexity");
    out.bulk(spec.complexity.as_bytes());
    if !spec.doc_flags.is_empty() {
        out.bulk(b"doc_flags");
        status_set(out, spec.doc_flags);
    }
    if let Some((since, by)) = spec.deprecated {
        out.bulk(b"deprecated_since");
        out.bulk(since.as_bytes());
        out.bulk(b"replaced_by");
        out.bulk(by.as_bytes());
    }
    if !spec.history.is_empty() {
        out.bulk(b"history");
        out.set(spec.history.len());
        for (v, what) in spec.history {
            out.array(2);
            out.bulk(v.as_bytes());
            out.bulk(what.as_bytes());
        }
    }
    if !args.is_empty() {
        out.bulk(b"arguments");
        arg_docs(out, &args);
    }
    if !subs.is_empty() {
        out.bulk(b"subcommands");
        out.map(subs.len());
        for s in subs {
            out.bulk(s.fullname.as_bytes());
            command_docs(out, s);
        }
    }
}

pub fn command(ctx: &mut ConnCtx<'_>, _argv: &[&[u8]]) {
    let top: Vec<&'static Resolved> = registry().top_level().collect();
    ctx.out.array(top.len());
    for r in top {
        command_info(ctx.out, r);
    }
}

pub fn command_count(ctx: &mut ConnCtx<'_>, _argv: &[&[u8]]) {
    ctx.out.int(registry().top_level().count() as i64);
}

pub fn command_info_cmd(ctx: &mut ConnCtx<'_>, argv: &[&[u8]]) {
    if argv.len() == 2 {
        return command(ctx, argv);
    }
    ctx.out.array(argv.len() - 2);
    for name in &argv[2..] {
        match registry().by_fullname(name) {
            Some(r) => command_info(ctx.out, r),
            None => ctx.out.null(),
        }
    }
}

pub fn command_docs_cmd(ctx: &mut ConnCtx<'_>, argv: &[&[u8]]) {
    let found: Vec<&'static Resolved> = if argv.len() == 2 {
        registry().top_level().collect()
    } else {
        argv[2..]
            .iter()
            .filter_map(|n| registry().by_fullname(n))
            .collect()
    };
    ctx.out.map(found.len());
    for r in found {
        ctx.out.bulk(r.fullname.as_bytes());
        command_docs(ctx.out, r);
    }
}

pub fn command_list(ctx: &mut ConnCtx<'_>, argv: &[&[u8]]) {
    #[derive(Clone, Copy)]
    enum Filter<'a> {
        None,
        Module,
        AclCat(u32),
        Pattern(&'a [u8]),
    }
    let mut filter = Filter::None;
    let mut i = 2;
    while i < argv.len() {
        let more = argv.len() - 1 - i;
        if super::opt_is(argv[i], "filterby") && more == 2 {
            let (kind, arg) = (argv[i + 1], argv[i + 2]);
            filter = if super::opt_is(kind, "module") {
                Filter::Module
            } else if super::opt_is(kind, "aclcat") {
                Filter::AclCat(
                    acl::NAMES
                        .iter()
                        .find(|(_, n)| super::opt_is(arg, n))
                        .map_or(0, |(c, _)| *c),
                )
            } else if super::opt_is(kind, "pattern") {
                Filter::Pattern(arg)
            } else {
                ctx.out.err(ERR_SYNTAX);
                return;
            };
            i += 3;
        } else {
            ctx.out.err(ERR_SYNTAX);
            return;
        }
    }
    let names: Vec<&str> = registry()
        .all
        .iter()
        .filter(|r| match filter {
            Filter::None => true,
            Filter::Module => false,
            Filter::AclCat(c) => c != 0 && r.spec.acl_categories() & c != 0,
            Filter::Pattern(p) => glob_match(p, r.fullname.as_bytes(), true),
        })
        .map(|r| r.fullname.as_str())
        .collect();
    ctx.out.array(names.len());
    for n in names {
        ctx.out.bulk(n.as_bytes());
    }
}

fn getkeys_impl(ctx: &mut ConnCtx<'_>, argv: &[&[u8]], with_flags: bool) {
    let target = &argv[2..];
    let r = match registry().lookup(target) {
        Lookup::Found(r) => r,
        _ => {
            ctx.out.err("Invalid command specified");
            return;
        }
    };
    if r.spec.keys.is_empty() {
        ctx.out.err("The command has no key arguments");
        return;
    }
    if !r.spec.arity_ok(target.len()) {
        ctx.out
            .err("Invalid number of arguments specified for command");
        return;
    }
    let mut pos = Vec::new();
    if key_positions(r.spec, target, &mut pos).is_none() {
        if r.spec.has(flag::NO_MANDATORY_KEYS) {
            ctx.out.array(0);
        } else {
            ctx.out.err("Invalid arguments specified for command");
        }
        return;
    }
    ctx.out.array(pos.len());
    for p in pos {
        if with_flags {
            ctx.out.array(2);
            ctx.out.bulk(target[p]);
            // The spec a position came from: the first whose range covers it.
            let flags = r.spec.keys.first().map_or(0, |k| k.flags);
            let flags = key_flags_at(r.spec, target, p).unwrap_or(flags);
            let names: Vec<&str> = keyflag::NAMES
                .iter()
                .filter(|(f, _)| flags & f != 0)
                .map(|(_, n)| *n)
                .collect();
            status_set(ctx.out, &names);
        } else {
            ctx.out.bulk(target[p]);
        }
    }
}

/// The flags of the key spec that yields position `p`. A spec with VARIABLE_FLAGS gets the
/// flags that these arguments imply, as Valkey's per-command getkeys functions give them.
fn key_flags_at(spec: &CommandSpec, argv: &[&[u8]], p: usize) -> Option<u32> {
    if spec
        .keys
        .iter()
        .any(|k| k.flags & keyflag::VARIABLE_FLAGS != 0)
        && spec.name == "set"
    {
        // SET writes without reading, unless GET asks for the old value.
        let get = argv.iter().skip(3).any(|a| super::opt_is(a, "get"));
        return Some(if get {
            keyflag::RW | keyflag::ACCESS | keyflag::UPDATE
        } else {
            keyflag::OW | keyflag::UPDATE
        });
    }
    for ks in spec.keys {
        let one = CommandSpec {
            keys: std::slice::from_ref(ks),
            ..CommandSpec::new("", spec.arity, 0, 0, spec.group, "", "", "", "")
        };
        let mut v = Vec::new();
        if key_positions(&one, argv, &mut v).is_some() && v.contains(&p) {
            return Some(ks.flags);
        }
    }
    None
}

pub fn command_getkeys(ctx: &mut ConnCtx<'_>, argv: &[&[u8]]) {
    getkeys_impl(ctx, argv, false);
}

pub fn command_getkeysandflags(ctx: &mut ConnCtx<'_>, argv: &[&[u8]]) {
    getkeys_impl(ctx, argv, true);
}

pub fn command_help(ctx: &mut ConnCtx<'_>, argv: &[&[u8]]) {
    super::connection::help_reply(
        ctx.out,
        argv[0],
        &[
            "(no subcommand)",
            "    Return details about all commands.",
            "COUNT",
            "    Return the total number of commands in this server.",
            "LIST",
            "    Return a list of all commands in this server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "GETKEYS <full-command>",
            "    Return the keys from a full command.",
            "GETKEYSANDFLAGS <full-command>",
            "    Return the keys and the access flags from a full command.",
        ],
    );
}
