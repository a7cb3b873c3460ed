//! `provisioner bench gateway` through the real binary, with tiny numbers, so that it cannot
//! rot: every phase runs and every call succeeds. Its figures are not checked (the machine is
//! shared and noisy; the bench prints, it does not assert).

use crate::support::run_cli;

/// The `errors` column of a table row that starts with `name` (`direct` or `gateway`).
fn errors_of(stdout: &str, after: &str, name: &str) -> Vec<String> {
    let table = &stdout[stdout.find(after).unwrap_or_else(|| panic!("no `{after}` in {stdout}"))..];
    let row = table.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name} row in {table}"));
    row.split_whitespace().map(str::to_owned).collect()
}

#[tokio::test]
async fn bench_gateway_calls_the_upstream_directly_and_through_the_gateway_and_judges_each_goal() {
    let database_url = std::env::var("DATABASE_URL").expect("run through scripts/test");
    let args = [
        "bench",
        "gateway",
        "--sessions",
        "2",
        "--calls",
        "20",
        "--duration",
        "2",
        "--rate",
        "20",
        "--open-sessions",
        "3",
    ];
    let run = run_cli(&args, &[("DATABASE_URL", &database_url)]).await;
    assert!(run.success, "{run:?}");

    for (table, name) in
        [("closed loop", "direct"), ("closed loop", "gateway"), ("open loop", "direct"), ("open loop", "gateway")]
    {
        let row = errors_of(&run.stdout, table, name);
        // name, calls/s, p50, p95, p99, errors, CPU µs/call of serve, Postgres and the bench
        assert_eq!(row.len(), 9, "{table} {name}: {row:?}");
        assert_eq!(row[5], "0", "{table} {name}: calls failed: {}", run.stdout);
    }
    assert!(run.stdout.contains("3 sessions opened through the gateway and held"), "{}", run.stdout);
    let goals = &run.stdout[run.stdout.find("goals:").expect("the goals are judged")..];
    let verdicts: Vec<&str> = goals.lines().skip(1).filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(verdicts.len(), 4, "{goals}");
    assert!(verdicts.iter().all(|l| l.ends_with("met") || l.ends_with("MISSED")), "{goals}");
}
