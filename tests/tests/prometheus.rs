//! The built-in Prometheus endpoint, checked by Prometheus itself (Debian package prometheus;
//! required under CI=true): a real Prometheus server on loopback scrapes corekey's
//! `metrics-port`, and its HTTP API shows the target up and `redis_commands_total` growing
//! under load; `promtool check metrics` accepts the page.

use corekey_tests::http::http_get;
use corekey_tests::require_tool;
use corekey_tests::server::{lease_port, Corekey, Process};
use std::ffi::OsString;
use std::io::Write;
use std::time::Duration;

/// How long Prometheus may take to start, scrape and answer (it scrapes every second).
const PROMETHEUS_DEADLINE: Duration = Duration::from_secs(60);

/// Percent-encodes a PromQL query for a URL.
fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"_-.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The value of the single sample an instant query returns, if there is one.
fn query_value(prom_port: u16, query: &str) -> Option<f64> {
    let (status, body) =
        http_get(prom_port, &format!("/api/v1/query?query={}", encode(query))).ok()?;
    if status != 200 || !body.contains("\"status\":\"success\"") {
        return None;
    }
    // `"value":[<time>,"<number>"]`: the number is the last quoted string of the result.
    let at = body.find("\"value\":[")?;
    let rest = &body[at..];
    let end = rest.find("\"]")?;
    let start = rest[..end].rfind('"')? + 1;
    rest[start..end].parse().ok()
}

/// Sends `n` SETs in one pipeline.
fn load(server: &Corekey, n: usize) {
    let cmds: Vec<Vec<String>> = (0..n)
        .map(|i| vec!["SET".into(), format!("prom-{i}"), "v".into()])
        .collect();
    let replies = server.client().pipeline(&cmds).expect("the SETs");
    assert!(replies.iter().all(|r| r.raw == b"+OK\r\n"));
}

/// promtool accepts `/metrics`; Prometheus scraping it every second reports the target up, and
/// its `redis_commands_total` for SET follows 100 and then 2000 more SETs.
#[test]
fn prometheus_scrapes_corekey() {
    let Some(prometheus) = require_tool("prometheus", "prometheus") else {
        return;
    };
    let Some(promtool) = require_tool("promtool", "prometheus") else {
        return;
    };
    let metrics = lease_port();
    let server = Corekey::start(&["--metrics-port", &metrics.port().to_string()]);
    load(&server, 100);

    // promtool lints the page as Prometheus would read it.
    let (status, page) = http_get(metrics.port(), "/metrics").expect("GET /metrics");
    assert_eq!(status, 200, "{page}");
    let mut check = std::process::Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting promtool");
    check
        .stdin
        .take()
        .expect("promtool's stdin")
        .write_all(page.as_bytes())
        .expect("feeding promtool");
    let out = check.wait_with_output().expect("promtool's result");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // A real Prometheus, loopback only, scraping every second into a scratch directory.
    let dir = std::env::temp_dir().join(format!(
        "corekey-prometheus-{}-{}",
        std::process::id(),
        metrics.port()
    ));
    std::fs::create_dir_all(&dir).expect("creating Prometheus's directory");
    let config = dir.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: corekey\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            metrics.port()
        ),
    )
    .expect("writing prometheus.yml");
    let web = lease_port();
    let args: Vec<OsString> = vec![
        format!("--config.file={}", config.display()).into(),
        format!("--storage.tsdb.path={}", dir.join("data").display()).into(),
        format!("--web.listen-address=127.0.0.1:{}", web.port()).into(),
        "--log.level=warn".into(),
    ];
    let prom = Process::spawn("prometheus", &prometheus, &args);
    let up = corekey_tests::wait::poll(PROMETHEUS_DEADLINE, || {
        query_value(web.port(), "up{job=\"corekey\"}").filter(|&v| v == 1.0)
    });
    assert!(
        up.is_some(),
        "Prometheus never saw the target up\n{}",
        prom.output_tail()
    );
    let (_, targets) = http_get(web.port(), "/api/v1/targets").expect("the targets API");
    assert!(targets.contains("\"health\":\"up\""), "{targets}");

    let query = "sum(redis_commands_total{job=\"corekey\",cmd=\"set\"})";
    let before = corekey_tests::wait::poll(PROMETHEUS_DEADLINE, || {
        query_value(web.port(), query).filter(|&v| v >= 100.0)
    })
    .unwrap_or_else(|| {
        panic!(
            "no redis_commands_total for SET in Prometheus\n{}",
            prom.output_tail()
        )
    });
    load(&server, 2000);
    let after = corekey_tests::wait::poll(PROMETHEUS_DEADLINE, || {
        query_value(web.port(), query).filter(|&v| v >= before + 2000.0)
    });
    assert!(
        after.is_some(),
        "redis_commands_total stayed at {before} after 2000 more SETs\n{}",
        prom.output_tail()
    );
    drop(prom);
    let _ = std::fs::remove_dir_all(&dir);
}

/// README.md documents every metric family `/metrics` serves (after commands of several
/// kinds, so the per-command and per-database families have samples).
#[test]
fn every_metric_is_documented() {
    let metrics = lease_port();
    let server = Corekey::start(&["--metrics-port", &metrics.port().to_string()]);
    load(&server, 10);
    assert!(server.client().call(&["INCR", "prom-0"]).reply.is_error());
    let (status, page) = http_get(metrics.port(), "/metrics").expect("GET /metrics");
    assert_eq!(status, 200);
    let readme = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"),
    )
    .expect("reading README.md");
    let families: Vec<&str> = page
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert!(families.len() > 40, "{page}");
    let undocumented: Vec<&&str> = families
        .iter()
        .filter(|f| !readme.contains(&format!("| `{f}` |")))
        .collect();
    assert!(undocumented.is_empty(), "README.md lacks {undocumented:?}");
}
