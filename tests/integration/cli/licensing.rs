//! `upkeep customer|key|activation …` (SPEC §13) on a store the CLI opens itself: the
//! same services as `/api/v1`, text and `--json` output.

use crate::support::{cli_json, upkeep_cli, upkeep_init};

#[test]
fn customers_keys_and_activations_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    upkeep_init(&data);
    let run = |args: &[&str]| cli_json(&upkeep_cli(&data, &[&["--json"], args].concat()));
    run(&[
        "account",
        "create",
        "--name",
        "Acme",
        "--email",
        "a@example.com",
        "--prefix",
        "acme",
    ]);
    let customer = run(&[
        "customer",
        "create",
        "--account",
        "acme",
        "--name",
        "Ann",
        "--email",
        "Ann@Example.com",
        "--country",
        "de",
    ]);
    let c = customer["id"].as_u64().unwrap().to_string();
    assert_eq!(customer["country"], "DE");
    let dup = upkeep_cli(
        &data,
        &[
            "customer",
            "create",
            "--account",
            "acme",
            "--name",
            "X",
            "--email",
            "ann@example.COM",
        ],
    );
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already has the email"));
    let listed = run(&["customer", "list", "--account", "acme", "-q", "ann"]);
    assert_eq!(listed["customers"].as_array().unwrap().len(), 1);

    let key = run(&[
        "key",
        "generate",
        "--account",
        "acme",
        "--customer",
        &c,
        "--product",
        "all",
        "--limit",
        "0",
        "--expires",
        "365d",
    ]);
    let k = key["id"].as_u64().unwrap().to_string();
    let value = key["key"].as_str().unwrap().to_owned();
    assert_eq!(key["product_ids"], "all");
    assert_eq!(key["activation_limit"], 0);
    let bad = upkeep_cli(
        &data,
        &[
            "key",
            "generate",
            "--account",
            "acme",
            "--customer",
            &c,
            "--product",
            "nope",
        ],
    );
    assert!(!bad.status.success());
    let negative = upkeep_cli(
        &data,
        &[
            "key",
            "generate",
            "--account",
            "acme",
            "--customer",
            &c,
            "--product",
            "all",
            "--limit",
            "-1",
        ],
    );
    assert!(String::from_utf8_lossy(&negative.stderr).contains("activation_limit"));
    let shown = run(&["key", "show", "--account", "acme", &k]);
    assert_eq!(shown["key"], value);
    assert_eq!(shown["activation_list"], serde_json::json!([]));
    let text = upkeep_cli(&data, &["key", "list", "--account", "acme"]);
    assert!(String::from_utf8_lossy(&text.stdout).contains(&value));
    assert_eq!(
        run(&["key", "disable", "--account", "acme", &k])["status"],
        "disabled"
    );
    assert_eq!(
        run(&["key", "enable", "--account", "acme", &k])["status"],
        "active"
    );
    let none = run(&["activation", "list", "--account", "acme", "--key", &k]);
    assert_eq!(none["activations"], serde_json::json!([]));
    let gone = run(&["customer", "delete", "--account", "acme", &c]);
    assert_eq!(gone["keys_deleted"], 1);
    let missing = upkeep_cli(&data, &["key", "show", "--account", "acme", &k]);
    assert!(!missing.status.success());
}
