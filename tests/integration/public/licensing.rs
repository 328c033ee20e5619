//! SPEC §9.2: public licensing over a real socket, in every dialect — UpdaterCloud's
//! download-key routes, EDD Software Licensing's license actions, Lemon Squeezy's license
//! API — with customers and keys made through the §9.1 admin API: activate → check →
//! deactivate, limits, dev sites, URL normalization and IDN hosts, expired and disabled
//! keys, other accounts' keys (never revealed), other products, EDD's JSON types against
//! the fixtures the real client accepted, and the per-address budget of unknown keys.

use crate::support::{Reply, TestServer};
use http::Method;
use serde_json::{Value, json};
use std::time::Duration;

pub(super) fn settings() -> upkeep::app::Settings {
    upkeep::app::Settings {
        auth_failures_per_minute: 0,
        // No account pool: these tests are about keys' own limits.
        default_activation_limit: 0,
        ..upkeep::app::Settings::default()
    }
}

pub(super) async fn admin(
    server: &TestServer,
    method: Method,
    path: &str,
    token: &str,
    body: Value,
) -> Reply {
    let call = server
        .request(method, path)
        .header("authorization", &format!("Bearer {token}"));
    let call = if body.is_null() {
        call
    } else {
        call.body(body.to_string())
    };
    call.send().await
}

/// An account with two licensed products: "Example Plugin" and "Other Plugin".
pub(super) struct Shop {
    pub(super) token: String,
    pub(super) product: u64,
    pub(super) other: u64,
}

pub(super) async fn shop(server: &TestServer, prefix: &str) -> Shop {
    let account = server.account(prefix);
    let mut ids = Vec::new();
    for (slug, name) in [
        ("example-plugin", "Example Plugin"),
        ("other-plugin", "Other Plugin"),
    ] {
        let made = admin(
            server,
            Method::POST,
            "/api/v1/products",
            &account.token,
            json!({"slug": slug, "name": name, "license": "download_keys"}),
        )
        .await
        .expect(201);
        ids.push(made["data"]["id"].as_u64().unwrap());
    }
    Shop {
        token: account.token,
        product: ids[0],
        other: ids[1],
    }
}

/// A key (id, value) for `products` of a new customer of `shop`.
pub(super) async fn key(
    server: &TestServer,
    shop: &Shop,
    products: &[u64],
    extra: Value,
) -> (u64, String) {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let customer = admin(
        server,
        Method::POST,
        "/api/v1/customers",
        &shop.token,
        json!({"name": "Ada Lovelace", "email": format!("ada{n}@example.com")}),
    )
    .await
    .expect(201)["data"]["id"]
        .as_u64()
        .unwrap();
    let mut body = json!({"customer_id": customer, "product_ids": products});
    for (name, value) in extra.as_object().into_iter().flatten() {
        body[name] = value.clone();
    }
    let made = admin(
        server,
        Method::POST,
        "/api/v1/download-keys",
        &shop.token,
        body,
    )
    .await
    .expect(201);
    (
        made["data"]["id"].as_u64().unwrap(),
        made["data"]["key"].as_str().unwrap().to_owned(),
    )
}

async fn set_status(server: &TestServer, shop: &Shop, id: u64, status: &str) {
    admin(
        server,
        Method::PATCH,
        &format!("/api/v1/download-keys/{id}"),
        &shop.token,
        json!({"status": status}),
    )
    .await
    .expect(200);
}

async fn get(server: &TestServer, path: &str) -> Reply {
    server.request(Method::GET, path).send().await
}

/// Activations in use on Lemon Squeezy key `k` of `acme`, as its `validate` says.
async fn ls_usage(server: &TestServer, k: &str) -> Value {
    let check = post(
        server,
        "/ls/acme/v1/licenses/validate",
        FORM,
        format!("license_key={k}"),
    )
    .await
    .expect(200);
    check["license_key"]["activation_usage"].clone()
}

async fn post(server: &TestServer, path: &str, content_type: &str, body: String) -> Reply {
    server
        .request(Method::POST, path)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
}

const FORM: &str = "application/x-www-form-urlencoded";

/// `%XX` for everything but unreserved characters.
pub(super) fn enc(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Every field of the fixture the real client accepted is in `ours`, with its JSON type.
fn same_types(ours: &Value, fixture: &str) {
    let path = format!(
        "{}/tests/fixtures/dialects/{fixture}",
        env!("CARGO_MANIFEST_DIR")
    );
    let want: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for (name, value) in want.as_object().unwrap() {
        assert_eq!(
            kind(&ours[name]),
            kind(value),
            "{fixture}: `{name}` is {} where the client got {value}: {ours}",
            ours[name]
        );
    }
}

// ----- UpdaterCloud --------------------------------------------------------------------

#[tokio::test]
async fn updatercloud_keys_are_checked_activated_listed_masked_and_deactivated() {
    let server = TestServer::start_with(settings()).await;
    let acme = shop(&server, "acme").await;
    let globex = shop(&server, "globex").await;
    let (_, k) = key(
        &server,
        &acme,
        &[acme.product],
        json!({"activation_limit": 1}),
    )
    .await;
    let uc = |product: u64, action: &str, query: &str| {
        format!("/api/v1/products/{product}/download-keys/{action}?{query}")
    };
    let p = acme.product;

    let ok = get(&server, &uc(p, "check", &format!("download_key={k}")))
        .await
        .expect(200);
    assert_eq!(
        ok,
        json!({
            "valid": true, "message": "Download key is valid.", "code": "valid",
            "download_key": {"status": "active", "expires_at": null,
                             "activations": {"limit": 1, "usage": 0}},
        })
    );
    // Without `domain` the check is the key's alone, whatever site the User-Agent names.
    let agent = server
        .request(Method::GET, &uc(p, "check", &format!("download_key={k}")))
        .header("user-agent", "WordPress/6.4; https://elsewhere.com")
        .send()
        .await
        .expect(200);
    assert_eq!(agent["code"], "valid", "{agent}");
    let inactive = get(
        &server,
        &uc(p, "check", &format!("download_key={k}&domain=example.com")),
    )
    .await
    .expect(200);
    assert_eq!(inactive["valid"], false);
    assert_eq!(inactive["code"], "site_inactive");
    // Every refusal of a write says which write it refused, a bad domain or machine too.
    for query in ["domain=bad%20host", "machine=%07"] {
        let bad = get(
            &server,
            &uc(p, "activate", &format!("download_key={k}&{query}")),
        )
        .await
        .expect(400);
        assert_eq!(
            (bad["code"].clone(), bad["activated"].clone()),
            (json!("invalid_request"), json!(false)),
            "{query}: {bad}"
        );
    }
    let gone = get(
        &server,
        &uc(999_999, "deactivate", &format!("download_key={k}")),
    )
    .await
    .expect(404);
    assert_eq!(gone["deactivated"], false, "{gone}");

    // Any spelling of the same site is the same site.
    let site = enc("HTTPS://WWW.Example.COM:443/shop/?x=1");
    let made = get(
        &server,
        &uc(p, "activate", &format!("download_key={k}&domain={site}")),
    )
    .await
    .expect(200);
    assert_eq!(made["activated"], true, "{made}");
    assert_eq!(made["valid"], true);
    assert_eq!(made["activation"]["domain"], "example.com");
    assert_eq!(made["activation"]["counts"], true);
    assert_eq!(
        made["download_key"]["activations"],
        json!({"limit": 1, "usage": 1})
    );
    let again = post(
        &server,
        &uc(p, "activate", ""),
        FORM,
        format!("download_key={k}&domain=example.com"),
    )
    .await
    .expect(200);
    assert_eq!(
        again["activated"], true,
        "an active site uses no slot: {again}"
    );
    assert_eq!(again["activation"]["id"], made["activation"]["id"]);
    for domain in ["example.com", "https://www.example.com/", "EXAMPLE.COM."] {
        let check = get(
            &server,
            &uc(
                p,
                "check",
                &format!("download_key={k}&domain={}", enc(domain)),
            ),
        )
        .await
        .expect(200);
        assert_eq!(check["code"], "valid", "{domain}: {check}");
    }
    // The limit; a development site uses no slot.
    let full = get(
        &server,
        &uc(p, "activate", &format!("download_key={k}&domain=other.com")),
    )
    .await
    .expect(200);
    assert_eq!(full["activated"], false);
    assert_eq!(full["code"], "activation_limit_reached");
    assert_eq!(full["activation"], Value::Null);
    let dev = post(
        &server,
        &uc(p, "activate", ""),
        "application/json",
        json!({"download_key": k, "domain": "https://staging.example.com"}).to_string(),
    )
    .await
    .expect(200);
    assert_eq!(dev["activated"], true, "{dev}");
    assert_eq!(dev["activation"]["counts"], false);
    assert_eq!(dev["download_key"]["activations"]["usage"], 1);

    // The holder's list: hosts masked, last-seen dates, the deactivation budget.
    let list = get(&server, &uc(p, "activations", &format!("download_key={k}")))
        .await
        .expect(200);
    let mut hosts: Vec<&str> = list["activations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["domain"].as_str().unwrap())
        .collect();
    hosts.sort_unstable();
    assert_eq!(hosts, ["ex*****.com", "st*************.com"], "{list}");
    assert!(!list.to_string().contains("example.com"), "{list}");
    assert!(list["activations"][0]["last_seen_at"].is_string());
    assert_eq!(list["deactivations"], json!({"limit": 10, "remaining": 10}));

    // Deactivating frees the slot: by site, or by the id from the list.
    let gone = get(
        &server,
        &uc(
            p,
            "deactivate",
            &format!("download_key={k}&domain=www.example.com"),
        ),
    )
    .await
    .expect(200);
    assert_eq!(gone["deactivated"], true, "{gone}");
    assert_eq!(gone["download_key"]["activations"]["usage"], 0);
    let dev_id = list["activations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["counts"] == false)
        .unwrap()["id"]
        .as_u64()
        .unwrap();
    let by_id = post(
        &server,
        &uc(p, "deactivate", ""),
        FORM,
        format!("download_key={k}&activation_id={dev_id}"),
    )
    .await
    .expect(200);
    assert_eq!(by_id["deactivated"], true, "{by_id}");
    let twice = get(
        &server,
        &uc(
            p,
            "deactivate",
            &format!("download_key={k}&domain=example.com"),
        ),
    )
    .await
    .expect(200);
    assert_eq!(twice["deactivated"], false);
    assert_eq!(twice["code"], "site_inactive");
    let now_inactive = get(
        &server,
        &uc(p, "check", &format!("download_key={k}&domain=example.com")),
    )
    .await
    .expect(200);
    assert_eq!(now_inactive["code"], "site_inactive");
    let list = get(&server, &uc(p, "activations", &format!("download_key={k}")))
        .await
        .expect(200);
    assert_eq!(list["activations"], json!([]));
    assert_eq!(list["deactivations"]["remaining"], 8);

    // An IDN host is its punycode; a machine instead of a site.
    let (_, k2) = key(&server, &acme, &[p], json!({"activation_limit": 2})).await;
    let idn = get(
        &server,
        &uc(
            p,
            "activate",
            &format!(
                "download_key={k2}&domain={}",
                enc("https://Bücher.example.org/")
            ),
        ),
    )
    .await
    .expect(200);
    assert_eq!(
        idn["activation"]["domain"], "xn--bcher-kva.example.org",
        "{idn}"
    );
    let puny = get(
        &server,
        &uc(
            p,
            "check",
            &format!("download_key={k2}&domain=xn--bcher-kva.example.org"),
        ),
    )
    .await
    .expect(200);
    assert_eq!(puny["code"], "valid");
    let machine = get(
        &server,
        &uc(
            p,
            "activate",
            &format!("download_key={k2}&machine=fp-1234abcd"),
        ),
    )
    .await
    .expect(200);
    assert_eq!(machine["activation"]["machine"], "fp-1234abcd");
    let list = get(
        &server,
        &uc(p, "activations", &format!("download_key={k2}")),
    )
    .await
    .expect(200);
    let machine = list["activations"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|a| a["machine"].as_str());
    assert_eq!(machine, Some("fp-1*******"), "{list}");

    // Bad requests, unknown keys and products, other products, other accounts.
    let missing = get(&server, &uc(p, "check", "")).await;
    assert_eq!(missing.status, 400);
    assert_eq!(missing.expect(400)["code"], "missing_key");
    let no_target = get(&server, &uc(p, "activate", &format!("download_key={k}"))).await;
    assert_eq!(no_target.expect(400)["activated"], false);
    let unknown = get(&server, &uc(p, "check", "download_key=no-such-key-123"))
        .await
        .expect(404);
    assert_eq!(unknown["valid"], false);
    assert_eq!(unknown["code"], "not_found");
    assert_eq!(unknown.as_object().unwrap().len(), 3, "{unknown}");
    get(&server, &uc(999_999, "check", &format!("download_key={k}")))
        .await
        .expect(404);
    let mismatch = get(
        &server,
        &uc(acme.other, "check", &format!("download_key={k}")),
    )
    .await
    .expect(200);
    assert_eq!(mismatch["code"], "product_mismatch");
    assert_eq!(mismatch["valid"], false);
    let refused = get(
        &server,
        &uc(
            acme.other,
            "activate",
            &format!("download_key={k}&domain=a.com"),
        ),
    )
    .await
    .expect(200);
    assert_eq!(refused["activated"], false);
    assert_eq!(refused["code"], "product_mismatch");
    // acme's key at globex's product, and globex's at acme's: unknown, nothing revealed.
    let (_, g) = key(&server, &globex, &[globex.product], json!({})).await;
    for (product, k) in [(globex.product, &k), (acme.product, &g)] {
        for action in ["check", "activations"] {
            let other = get(&server, &uc(product, action, &format!("download_key={k}")))
                .await
                .expect(404);
            assert_eq!(other["code"], "not_found", "{other}");
            assert!(other.get("download_key").is_none());
        }
    }
}

#[tokio::test]
async fn updatercloud_disabled_and_expired_keys_and_the_monthly_deactivation_budget() {
    let server = TestServer::start_with(upkeep::app::Settings {
        max_deactivations_per_month: 2,
        ..settings()
    })
    .await;
    let acme = shop(&server, "acme").await;
    let p = acme.product;
    let uc =
        |action: &str, query: &str| format!("/api/v1/products/{p}/download-keys/{action}?{query}");
    let (id, k) = key(&server, &acme, &[p], json!({"activation_limit": 0})).await;
    for round in 0..3 {
        let made = get(
            &server,
            &uc("activate", &format!("download_key={k}&machine=m-1")),
        )
        .await
        .expect(200);
        assert_eq!(made["activated"], true);
        assert_eq!(
            made["download_key"]["activations"]["limit"], 0,
            "0 = unlimited"
        );
        let gone = get(
            &server,
            &uc("deactivate", &format!("download_key={k}&machine=m-1")),
        )
        .await
        .expect(200);
        if round < 2 {
            assert_eq!(gone["deactivated"], true, "{gone}");
        } else {
            assert_eq!(gone["deactivated"], false, "{gone}");
            assert_eq!(gone["code"], "rate_limited");
        }
    }
    let check = get(
        &server,
        &uc("check", &format!("download_key={k}&machine=m-1")),
    )
    .await
    .expect(200);
    assert_eq!(
        check["code"], "valid",
        "the refused deactivation changed nothing"
    );
    // A restart forgets none: the store counts them, in the deletion's transaction.
    let clock = server.clock.clone();
    let (_dir, path) = server.stop().await;
    let server = TestServer::start_in(
        &path,
        clock,
        upkeep::app::Settings {
            max_deactivations_per_month: 2,
            ..settings()
        },
    )
    .await;
    let after = get(
        &server,
        &uc("deactivate", &format!("download_key={k}&machine=m-1")),
    )
    .await
    .expect(200);
    assert_eq!(
        (after["deactivated"].clone(), after["code"].clone()),
        (json!(false), json!("rate_limited")),
        "{after}"
    );

    set_status(&server, &acme, id, "disabled").await;
    let disabled = get(&server, &uc("check", &format!("download_key={k}")))
        .await
        .expect(200);
    assert_eq!(disabled["valid"], false);
    assert_eq!(disabled["code"], "disabled");
    assert_eq!(disabled["download_key"]["status"], "disabled");
    let refused = get(
        &server,
        &uc("activate", &format!("download_key={k}&machine=m-2")),
    )
    .await
    .expect(200);
    assert_eq!(
        (refused["activated"].clone(), refused["code"].clone()),
        (json!(false), json!("disabled"))
    );
    // A disabled key may still free its slot: deactivated, and said to be disabled.
    let (freed_id, freed) = key(&server, &acme, &[p], json!({})).await;
    let on = get(
        &server,
        &uc(
            "activate",
            &format!("download_key={freed}&domain=freed.example"),
        ),
    )
    .await
    .expect(200);
    assert_eq!(on["activated"], true, "{on}");
    set_status(&server, &acme, freed_id, "disabled").await;
    let off = get(
        &server,
        &uc(
            "deactivate",
            &format!("download_key={freed}&domain=freed.example"),
        ),
    )
    .await
    .expect(200);
    assert_eq!(
        (
            off["deactivated"].clone(),
            off["valid"].clone(),
            off["code"].clone()
        ),
        (json!(true), json!(false), json!("disabled")),
        "{off}"
    );

    let (_, soon) = key(&server, &acme, &[p], json!({"expires_in": "1d"})).await;
    let fine = get(&server, &uc("check", &format!("download_key={soon}")))
        .await
        .expect(200);
    assert_eq!(fine["code"], "valid");
    assert!(
        fine["download_key"]["expires_at"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );
    server.clock.advance(Duration::from_secs(2 * 86_400));
    let expired = get(&server, &uc("check", &format!("download_key={soon}")))
        .await
        .expect(200);
    assert_eq!(expired["code"], "expired");
    assert_eq!(expired["valid"], false);
}

// ----- EDD Software Licensing -----------------------------------------------------------

#[tokio::test]
async fn edd_license_actions_answer_edds_fields_with_the_types_its_client_accepts() {
    let server = TestServer::start_with(settings()).await;
    let acme = shop(&server, "acme").await;
    let globex = shop(&server, "globex").await;
    let p = acme.product;
    let (_, k) = key(&server, &acme, &[p], json!({"activation_limit": 5})).await;
    let at = &server;
    let edd =
        |query: String| async move { get(at, &format!("/edd/acme?{query}")).await.expect(200) };

    // activate_license, as EDD's sample plugin sends it: a form POST.
    let site = enc("HTTPS://WWW.Example.COM:443/shop/?x=1");
    let activated = post(
        &server,
        "/edd/acme/",
        FORM,
        format!("edd_action=activate_license&license={k}&item_id={p}&url={site}"),
    )
    .await
    .expect(200);
    same_types(&activated, "edd-activate_license.json");
    assert_eq!(activated["success"], true, "{activated}");
    assert_eq!(activated["license"], "valid");
    assert_eq!(activated["item_id"], p);
    assert_eq!(activated["item_name"], "Example Plugin");
    assert_eq!(activated["site_count"], 1);
    assert_eq!(activated["activations_left"], 4);
    assert_eq!(activated["license_limit"], 5);
    assert_eq!(activated["expires"], "lifetime");
    assert_eq!(activated["payment_id"], 0);
    assert_eq!(activated["price_id"], false);
    assert_eq!(activated["customer_name"], "Ada Lovelace");
    assert_eq!(activated["is_local"], false);
    assert_eq!(activated["checksum"].as_str().unwrap().len(), 32);
    assert!(activated.get("error").is_none());

    // check_license: the same site in any spelling, by id or by name (id wins).
    let checked = edd(format!(
        "edd_action=check_license&license={k}&item_id={p}&url=example.com"
    ))
    .await;
    same_types(&checked, "edd-check_license.json");
    assert_eq!(
        (checked["success"].clone(), checked["license"].clone()),
        (json!(true), json!("valid"))
    );
    let by_name = edd(format!(
        "edd_action=check_license&license={k}&item_name=Example%20Plugin&url=https://example.com"
    ))
    .await;
    assert_eq!(by_name["license"], "valid", "{by_name}");
    assert_eq!(by_name["item_id"], p);
    // EDD's updater sends `item_id=0` for a plugin set up by name: by name, as EDD does.
    let zero_id = edd(format!(
        "edd_action=check_license&license={k}&item_id=0&item_name=Example+Plugin&url=example.com"
    ))
    .await;
    assert_eq!(zero_id["license"], "valid", "{zero_id}");
    assert_eq!(zero_id["item_id"], p);
    let id_wins = edd(format!(
        "edd_action=check_license&license={k}&item_id={p}&item_name=Other%20Plugin"
    ))
    .await;
    assert_eq!(id_wins["license"], "valid");
    let elsewhere = edd(format!(
        "edd_action=check_license&license={k}&item_id={p}&url=other.com"
    ))
    .await;
    assert_eq!(elsewhere["license"], "site_inactive");
    assert_eq!(
        elsewhere["success"], true,
        "success:false only for `invalid`"
    );
    let wrong_id = edd(format!(
        "edd_action=check_license&license={k}&item_id={}",
        acme.other
    ))
    .await;
    assert_eq!(wrong_id["license"], "invalid_item_id");
    let no_such_id = edd(format!(
        "edd_action=check_license&license={k}&item_id=999999"
    ))
    .await;
    assert_eq!(no_such_id["license"], "invalid_item_id");
    let wrong_name = edd(format!(
        "edd_action=check_license&license={k}&item_name=Other+Plugin"
    ))
    .await;
    assert_eq!(wrong_name["license"], "item_name_mismatch");
    let refused = edd(format!(
        "edd_action=activate_license&license={k}&item_name=Other+Plugin&url=a.com"
    ))
    .await;
    assert_eq!(refused["success"], false);
    assert_eq!(refused["error"], "item_name_mismatch");

    // The WordPress User-Agent names the site when `url` is absent; a development site
    // and a declared non-production environment use no slot.
    let by_agent = server
        .request(
            Method::GET,
            &format!("/edd/acme?edd_action=activate_license&license={k}&item_id={p}"),
        )
        .header("user-agent", "WordPress/6.4; https://www.agent-site.com")
        .send()
        .await
        .expect(200);
    assert_eq!(by_agent["success"], true, "{by_agent}");
    assert_eq!(by_agent["site_count"], 2);
    let staging = edd(format!(
        "edd_action=activate_license&license={k}&item_id={p}&url=staging.example.com"
    ))
    .await;
    assert_eq!(staging["success"], true);
    assert_eq!(staging["is_local"], true);
    assert_eq!(staging["site_count"], 2);
    let declared = edd(format!(
        "edd_action=activate_license&license={k}&item_id={p}&url=preview.shop.com&environment=staging"
    ))
    .await;
    assert_eq!(declared["site_count"], 2, "{declared}");
    let agent_check = edd(format!(
        "edd_action=check_license&license={k}&item_id={p}&url=agent-site.com"
    ))
    .await;
    assert_eq!(agent_check["license"], "valid");

    // deactivate_license: `expires` stays "lifetime" (Unix seconds when it has a date).
    let gone = post(
        &server,
        "/edd/acme",
        FORM,
        format!("edd_action=deactivate_license&license={k}&item_id={p}&url=www.example.com"),
    )
    .await
    .expect(200);
    same_types(&gone, "edd-deactivate_license.json");
    assert_eq!(
        (gone["success"].clone(), gone["license"].clone()),
        (json!(true), json!("deactivated"))
    );
    let again = edd(format!(
        "edd_action=deactivate_license&license={k}&item_id={p}&url=example.com"
    ))
    .await;
    assert_eq!(
        (again["success"].clone(), again["license"].clone()),
        (json!(false), json!("failed"))
    );
    let after = edd(format!(
        "edd_action=check_license&license={k}&item_id={p}&url=example.com"
    ))
    .await;
    assert_eq!(after["license"], "site_inactive");

    // The limit: `no_activations_left` with `max_sites`.
    let (_, one) = key(&server, &acme, &[p], json!({"activation_limit": 1})).await;
    let first = edd(format!(
        "edd_action=activate_license&license={one}&item_id={p}&url=one.com"
    ))
    .await;
    assert_eq!(first["activations_left"], 0);
    let second = edd(format!(
        "edd_action=activate_license&license={one}&item_id={p}&url=two.com"
    ))
    .await;
    assert_eq!(second["success"], false);
    assert_eq!(second["license"], "invalid");
    assert_eq!(second["error"], "no_activations_left");
    assert_eq!(second["max_sites"], 1);
    let (_, unlimited) = key(&server, &acme, &[p], json!({"activation_limit": 0})).await;
    let open = edd(format!(
        "edd_action=activate_license&license={unlimited}&item_id={p}&url=one.com"
    ))
    .await;
    assert_eq!(open["activations_left"], "unlimited");
    assert_eq!(open["license_limit"], 0);

    // Unknown keys, other accounts' keys, malformed requests: `invalid`, always 200.
    let unknown = edd(format!(
        "edd_action=check_license&license=no-such-key-1&item_id={p}"
    ))
    .await;
    same_types(&unknown, "edd-check_license-unknown.json");
    assert_eq!(
        (unknown["success"].clone(), unknown["license"].clone()),
        (json!(false), json!("invalid"))
    );
    let mut fields: Vec<&String> = unknown.as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(
        fields,
        ["checksum", "item_id", "item_name", "license", "success"]
    );
    let (_, g) = key(&server, &globex, &[globex.product], json!({})).await;
    let theirs = edd(format!(
        "edd_action=check_license&license={g}&item_id={}",
        globex.product
    ))
    .await;
    assert_eq!(theirs["license"], "invalid");
    assert!(theirs.get("customer_email").is_none(), "{theirs}");
    let missing = edd(format!("edd_action=activate_license&item_id={p}")).await;
    assert_eq!(
        (missing["success"].clone(), missing["error"].clone()),
        (json!(false), json!("missing"))
    );
    let nowhere = get(
        &server,
        &format!("/edd/nosuchshop?edd_action=check_license&license={k}"),
    )
    .await
    .expect(200);
    assert_eq!(nowhere["license"], "invalid");
    let garbage = post(
        &server,
        "/edd/acme",
        FORM,
        "edd_action=check_license&%%%=&license".into(),
    )
    .await
    .expect(200);
    assert_eq!(garbage["success"], false);

    // The bare host answers for the default account (the first one made: acme).
    let root = get(
        &server,
        &format!("/?edd_action=check_license&license={k}&item_id={p}"),
    )
    .await
    .expect(200);
    assert_eq!(root["license"], "valid", "{root}");
    let root_post = post(
        &server,
        "/",
        FORM,
        format!("edd_action=activate_license&license={k}&item_id={p}&url=root.example.net"),
    )
    .await
    .expect(200);
    assert_eq!(root_post["success"], true, "{root_post}");
    let root_theirs = get(&server, &format!("/?edd_action=check_license&license={g}"))
        .await
        .expect(200);
    assert_eq!(root_theirs["license"], "invalid");
}

#[tokio::test]
async fn edd_expired_and_disabled_keys() {
    let server = TestServer::start_with(settings()).await;
    let acme = shop(&server, "acme").await;
    let p = acme.product;
    let (id, k) = key(&server, &acme, &[p], json!({"expires_in": "1d"})).await;
    let at = &server;
    let edd =
        |query: String| async move { get(at, &format!("/edd/acme?{query}")).await.expect(200) };
    let fine = edd(format!("edd_action=check_license&license={k}&item_id={p}")).await;
    let expires = fine["expires"].as_str().unwrap();
    assert_eq!(expires.len(), 19, "Y-m-d H:i:s: {expires}");
    assert_eq!(&expires[10..11], " ");
    let gone = edd(format!(
        "edd_action=deactivate_license&license={k}&item_id={p}&url=a.com"
    ))
    .await;
    assert!(
        gone["expires"].is_u64(),
        "Unix seconds on deactivate: {gone}"
    );
    server.clock.advance(Duration::from_secs(2 * 86_400));
    let expired = edd(format!("edd_action=check_license&license={k}&item_id={p}")).await;
    assert_eq!(
        (expired["success"].clone(), expired["license"].clone()),
        (json!(true), json!("expired"))
    );
    let refused = edd(format!(
        "edd_action=activate_license&license={k}&item_id={p}&url=a.com"
    ))
    .await;
    assert_eq!(
        (refused["success"].clone(), refused["error"].clone()),
        (json!(false), json!("expired"))
    );

    let (id2, k2) = key(&server, &acme, &[p], json!({})).await;
    set_status(&server, &acme, id2, "disabled").await;
    let disabled = edd(format!("edd_action=check_license&license={k2}&item_id={p}")).await;
    assert_eq!(
        (disabled["success"].clone(), disabled["license"].clone()),
        (json!(true), json!("disabled"))
    );
    let refused = edd(format!(
        "edd_action=activate_license&license={k2}&item_id={p}&url=a.com"
    ))
    .await;
    assert_eq!(refused["error"], "disabled");
    let _ = id;
}

// ----- Lemon Squeezy -------------------------------------------------------------------

fn is_ls_time(value: &Value) -> bool {
    let text = value.as_str().unwrap_or("");
    text.len() == 27 && text.ends_with('Z') && text.as_bytes()[19] == b'.'
}

fn is_uuid(value: &Value) -> bool {
    let text = value.as_str().unwrap_or("");
    let groups: Vec<usize> = text.split('-').map(str::len).collect();
    groups == [8, 4, 4, 4, 12] && text.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
}

#[tokio::test]
async fn lemon_squeezy_activates_validates_and_deactivates_instances() {
    let server = TestServer::start_with(settings()).await;
    let acme = shop(&server, "acme").await;
    let globex = shop(&server, "globex").await;
    let (_, k) = key(
        &server,
        &acme,
        &[acme.product],
        json!({"activation_limit": 2}),
    )
    .await;
    let ls = |action: &str| format!("/ls/acme/v1/licenses/{action}");

    let fresh = post(&server, &ls("validate"), FORM, format!("license_key={k}"))
        .await
        .expect(200);
    assert_eq!(fresh["valid"], true, "{fresh}");
    assert_eq!(fresh["error"], Value::Null);
    assert_eq!(fresh["instance"], Value::Null);
    assert_eq!(fresh["license_key"]["status"], "inactive");
    assert_eq!(fresh["license_key"]["key"], k);
    assert_eq!(fresh["license_key"]["test_mode"], false);
    assert_eq!(fresh["license_key"]["activation_limit"], 2);
    assert_eq!(fresh["license_key"]["activation_usage"], 0);
    assert!(is_ls_time(&fresh["license_key"]["created_at"]), "{fresh}");
    // Unlimited activations (our 0) are `null`, as Lemon Squeezy answers them.
    let (_, unlimited) = key(
        &server,
        &acme,
        &[acme.product],
        json!({"activation_limit": 0}),
    )
    .await;
    let answer = post(
        &server,
        &ls("validate"),
        FORM,
        format!("license_key={unlimited}"),
    )
    .await
    .expect(200);
    assert_eq!(answer["valid"], true, "{answer}");
    assert_eq!(
        answer["license_key"]["activation_limit"],
        Value::Null,
        "{answer}"
    );
    assert_eq!(fresh["license_key"]["expires_at"], Value::Null);
    let meta = &fresh["meta"];
    assert!(meta["store_id"].as_u64().unwrap() > 0);
    assert_eq!(meta["product_id"], acme.product);
    assert_eq!(meta["product_name"], "Example Plugin");
    assert_eq!(meta["variant_name"], "Default");
    assert_eq!(
        (meta["order_id"].clone(), meta["variant_id"].clone()),
        (json!(0), json!(0))
    );
    assert_eq!(meta["customer_name"], "Ada Lovelace");

    let laptop = post(
        &server,
        &ls("activate"),
        FORM,
        format!("license_key={k}&instance_name=Laptop"),
    )
    .await
    .expect(200);
    assert_eq!(laptop["activated"], true, "{laptop}");
    assert_eq!(laptop["error"], Value::Null);
    assert!(is_uuid(&laptop["instance"]["id"]), "{laptop}");
    assert_eq!(laptop["instance"]["name"], "Laptop");
    assert!(is_ls_time(&laptop["instance"]["created_at"]));
    assert_eq!(laptop["license_key"]["status"], "active");
    assert_eq!(laptop["license_key"]["activation_usage"], 1);
    assert_eq!(
        laptop["meta"]["store_id"], meta["store_id"],
        "stable per account"
    );
    // JSON bodies, whatever JSON type they are labelled with.
    let desktop = post(
        &server,
        &ls("activate"),
        "application/vnd.api+json",
        json!({"license_key": k, "instance_name": "Desktop"}).to_string(),
    )
    .await
    .expect(200);
    assert_eq!(desktop["license_key"]["activation_usage"], 2);
    assert_ne!(desktop["instance"]["id"], laptop["instance"]["id"]);
    let third = post(
        &server,
        &ls("activate"),
        "application/json",
        json!({"license_key": k, "instance_name": "Third"}).to_string(),
    )
    .await;
    assert_eq!(third.status, 400);
    let third = third.expect(400);
    assert_eq!(third["activated"], false);
    assert_eq!(
        third["error"],
        "This license key has reached the activation limit."
    );

    let instance = laptop["instance"]["id"].as_str().unwrap().to_owned();
    let valid = post(
        &server,
        &ls("validate"),
        "application/json",
        json!({"license_key": k, "instance_id": instance}).to_string(),
    )
    .await
    .expect(200);
    assert_eq!(valid["valid"], true);
    assert_eq!(valid["instance"]["id"], instance.as_str());
    assert_eq!(valid["instance"]["name"], "Laptop");
    let bogus = post(
        &server,
        &ls("validate"),
        FORM,
        format!("license_key={k}&instance_id=6f0d8a2e-1c3b-4d5e-8f70-000000000001"),
    )
    .await;
    assert_eq!(bogus.status, 404);
    assert_eq!(bogus.expect(404)["error"], "instance_id not found.");

    let gone = post(
        &server,
        &ls("deactivate"),
        FORM,
        format!("license_key={k}&instance_id={instance}"),
    )
    .await
    .expect(200);
    assert_eq!(gone["deactivated"], true, "{gone}");
    assert!(
        gone.get("instance").is_none(),
        "deactivate carries no instance"
    );
    assert_eq!(gone["license_key"]["activation_usage"], 1);
    let after = post(
        &server,
        &ls("validate"),
        FORM,
        format!("license_key={k}&instance_id={instance}"),
    )
    .await;
    assert_eq!(after.status, 404);
    let twice = post(
        &server,
        &ls("deactivate"),
        FORM,
        format!("license_key={k}&instance_id={instance}"),
    )
    .await;
    assert_eq!(twice.expect(404)["error"], "instance_id not found.");

    // Missing fields (422), unknown and other accounts' keys (404).
    let none = post(&server, &ls("validate"), FORM, String::new()).await;
    assert_eq!(none.expect(422)["error"], "license_key field is required.");
    let unnamed = post(&server, &ls("activate"), FORM, format!("license_key={k}")).await;
    assert_eq!(
        unnamed.expect(422)["error"],
        "instance_name field is required."
    );
    let no_instance = post(&server, &ls("deactivate"), FORM, format!("license_key={k}")).await;
    assert_eq!(
        no_instance.expect(422)["error"],
        "instance_id field is required."
    );
    let unknown = post(
        &server,
        &ls("validate"),
        FORM,
        "license_key=no-such-key-1".into(),
    )
    .await;
    let unknown = unknown.expect(404);
    assert_eq!(unknown["error"], "license_key not found.");
    assert_eq!(unknown["valid"], false);
    assert_eq!(unknown["license_key"], Value::Null);
    let (_, g) = key(&server, &globex, &[globex.product], json!({})).await;
    let theirs = post(&server, &ls("validate"), FORM, format!("license_key={g}")).await;
    assert_eq!(theirs.expect(404)["error"], "license_key not found.");
    post(
        &server,
        "/ls/nosuchshop/v1/licenses/validate",
        FORM,
        format!("license_key={k}"),
    )
    .await
    .expect(404);

    // The default account's routes (acme: the first account made).
    let default = post(
        &server,
        "/v1/licenses/validate",
        FORM,
        format!("license_key={k}"),
    )
    .await
    .expect(200);
    assert_eq!(default["valid"], true);
    post(
        &server,
        "/v1/licenses/validate",
        FORM,
        format!("license_key={g}"),
    )
    .await
    .expect(404);
    let ours = post(
        &server,
        "/ls/globex/v1/licenses/validate",
        FORM,
        format!("license_key={g}"),
    )
    .await
    .expect(200);
    assert_ne!(ours["meta"]["store_id"], meta["store_id"]);

    // A key for every product names no single product.
    let (_, all) = key(&server, &acme, &[acme.product, acme.other], json!({})).await;
    let both = post(&server, &ls("validate"), FORM, format!("license_key={all}"))
        .await
        .expect(200);
    assert_eq!(
        (
            both["meta"]["product_id"].clone(),
            both["meta"]["product_name"].clone()
        ),
        (Value::Null, Value::Null)
    );
}

#[tokio::test]
async fn lemon_squeezy_disabled_and_expired_keys() {
    let server = TestServer::start_with(settings()).await;
    let acme = shop(&server, "acme").await;
    let (id, k) = key(&server, &acme, &[acme.product], json!({})).await;
    set_status(&server, &acme, id, "disabled").await;
    let disabled = post(
        &server,
        "/v1/licenses/validate",
        FORM,
        format!("license_key={k}"),
    )
    .await
    .expect(200);
    assert_eq!(disabled["valid"], false);
    assert_eq!(disabled["error"], Value::Null);
    assert_eq!(disabled["license_key"]["status"], "disabled");
    let refused = post(
        &server,
        "/v1/licenses/activate",
        FORM,
        format!("license_key={k}&instance_name=X"),
    )
    .await;
    assert_eq!(
        refused.expect(400)["error"],
        "This license key is disabled."
    );

    let (_, soon) = key(&server, &acme, &[acme.product], json!({"expires_in": "1d"})).await;
    let fine = post(
        &server,
        "/v1/licenses/validate",
        FORM,
        format!("license_key={soon}"),
    )
    .await
    .expect(200);
    assert!(is_ls_time(&fine["license_key"]["expires_at"]), "{fine}");
    server.clock.advance(Duration::from_secs(2 * 86_400));
    let expired = post(
        &server,
        "/v1/licenses/validate",
        FORM,
        format!("license_key={soon}"),
    )
    .await
    .expect(200);
    assert_eq!(expired["valid"], false);
    assert_eq!(expired["license_key"]["status"], "expired");
    assert_eq!(expired["error"], "This license key is expired.");
    let refused = post(
        &server,
        "/v1/licenses/activate",
        FORM,
        format!("license_key={soon}&instance_name=X"),
    )
    .await;
    assert_eq!(refused.expect(400)["error"], "This license key is expired.");
}

#[tokio::test]
async fn lemon_squeezy_instance_names_are_held_to_the_label_rules() {
    let server = TestServer::start_with(settings()).await;
    let acme = shop(&server, "acme").await;
    let (_, k) = key(&server, &acme, &[acme.product], json!({})).await;
    let activate = "/ls/acme/v1/licenses/activate";
    let longest = "n".repeat(upkeep::model::licensing::MAX_LABEL_LEN);
    for name in [
        format!("{longest}n"),
        "bell\u{7}".to_owned(),
        "line\nbreak".to_owned(),
    ] {
        let reply = post(
            &server,
            activate,
            FORM,
            format!("license_key={k}&instance_name={}", enc(&name)),
        )
        .await;
        let answer = reply.expect(400);
        assert_eq!(answer["activated"], false, "{answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.starts_with("instance_name:"), "{error}");
    }
    assert_eq!(ls_usage(&server, &k).await, 0, "refused, nothing activated");
    // The longest allowed name, trimmed, is kept.
    let made = post(
        &server,
        activate,
        FORM,
        format!("license_key={k}&instance_name=%20{longest}%20"),
    )
    .await
    .expect(200);
    assert_eq!(made["instance"]["name"], longest.as_str());
}

// ----- bodies refused before the handler ---------------------------------------------------

/// Sends `head` and the start of a body it never finishes; returns what the server sent
/// before it closed the connection (after `body_timeout`).
async fn stalled(server: &TestServer, head: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut out))
        .await
        .expect("the server answers and closes within 20 s")
        .unwrap();
    String::from_utf8_lossy(&out).into_owned()
}

/// The JSON body of a raw HTTP/1.1 answer.
fn raw_json(answer: &str) -> Value {
    let (_, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    serde_json::from_str(body).unwrap_or_else(|err| panic!("{err}: {answer}"))
}

#[tokio::test]
async fn bodies_too_large_or_too_slow_are_answered_in_each_dialects_shape() {
    let server = TestServer::start_with(upkeep::app::Settings {
        body_timeout: Duration::from_millis(300),
        ..settings()
    })
    .await;
    let acme = shop(&server, "acme").await;
    let p = acme.product;
    let (_, k) = key(&server, &acme, &[p], json!({})).await;
    let padding = "x".repeat(upkeep::app::Settings::default().max_body_bytes + 1);

    // Lemon Squeezy: the status, in the license answer's shape (both its addresses).
    for (path, flag) in [
        ("/ls/acme/v1/licenses/activate", "activated"),
        ("/ls/acme/v1/licenses/validate", "valid"),
        ("/ls/acme/v1/licenses/deactivate", "deactivated"),
        ("/v1/licenses/activate", "activated"),
        ("/v1/licenses/validate", "valid"),
        ("/v1/licenses/deactivate", "deactivated"),
    ] {
        let body = format!("license_key={k}&instance_name=a&instance_id=b&pad={padding}");
        let reply = post(&server, path, FORM, body).await;
        let answer = reply.expect(413);
        assert_eq!(answer[flag], false, "{path}: {answer}");
        let error = answer["error"].as_str().unwrap();
        assert!(error.contains("larger than the limit"), "{path}: {error}");
        assert_eq!(answer["license_key"], Value::Null, "{path}");
        assert_eq!(answer["meta"], Value::Null, "{path}");
        assert_eq!(reply.header("cache-control"), Some("no-store"), "{path}");
        assert!(reply.header("x-request-id").is_some(), "{path}");
    }
    let slow = stalled(
        &server,
        format!(
            "POST /ls/acme/v1/licenses/activate HTTP/1.1\r\nhost: x\r\ncontent-type: {FORM}\r\n\
             content-length: 100\r\n\r\nlicense_key={k}"
        ),
    )
    .await;
    assert!(slow.starts_with("HTTP/1.1 408"), "{slow}");
    let answer = raw_json(&slow);
    assert_eq!(answer["activated"], false, "{answer}");
    assert_eq!(answer["error"], "the request body did not arrive in time");
    assert_eq!(answer["instance"], Value::Null);

    // UpdaterCloud's key routes: the status, in its key answer's shape.
    for (action, flag) in [
        ("check", None),
        ("activate", Some("activated")),
        ("deactivate", Some("deactivated")),
    ] {
        let path = format!("/api/v1/products/{p}/download-keys/{action}");
        let body = format!("download_key={k}&domain=a.com&pad={padding}");
        let answer = post(&server, &path, FORM, body).await.expect(413);
        assert_eq!(answer["valid"], false, "{path}: {answer}");
        assert_eq!(answer["code"], "payload_too_large", "{path}");
        for other in ["activated", "deactivated"] {
            let expected = if flag == Some(other) {
                json!(false)
            } else {
                Value::Null
            };
            assert_eq!(answer[other], expected, "{path}: {answer}");
        }
    }
    let slow = stalled(
        &server,
        format!(
            "POST /api/v1/products/{p}/download-keys/activate HTTP/1.1\r\nhost: x\r\n\
             content-type: {FORM}\r\ncontent-length: 100\r\n\r\ndownload_key={k}"
        ),
    )
    .await;
    assert!(slow.starts_with("HTTP/1.1 408"), "{slow}");
    let answer = raw_json(&slow);
    assert_eq!(
        (answer["valid"].clone(), answer["activated"].clone()),
        (json!(false), json!(false)),
        "{answer}"
    );
    assert_eq!(answer["code"], "request_timeout");

    // EDD: `200`, always, with EDD's failure fields (both its addresses).
    for path in ["/edd/acme", "/"] {
        let body =
            format!("edd_action=activate_license&license={k}&item_id={p}&url=a.com&pad={padding}");
        let answer = post(&server, path, FORM, body).await.expect(200);
        assert_eq!(answer["success"], false, "{path}: {answer}");
        assert_eq!(answer["license"], "invalid", "{path}");
        assert_eq!(answer["error"], "payload_too_large", "{path}");
        assert!(
            answer["msg"]
                .as_str()
                .unwrap()
                .contains("larger than the limit")
        );
    }
    let slow = stalled(
        &server,
        format!(
            "POST /edd/acme HTTP/1.1\r\nhost: x\r\ncontent-type: {FORM}\r\n\
             content-length: 100\r\n\r\nedd_action=activate_license&license={k}"
        ),
    )
    .await;
    assert!(slow.starts_with("HTTP/1.1 200"), "{slow}");
    let answer = raw_json(&slow);
    assert_eq!(
        (answer["success"].clone(), answer["error"].clone()),
        (json!(false), json!("request_timeout")),
        "{answer}"
    );

    // None of it activated anything.
    assert_eq!(
        ls_usage(&server, &k).await,
        0,
        "none of it activated anything"
    );
    // The token-authenticated routes keep the common shape.
    let admin_reply = admin(
        &server,
        Method::POST,
        "/api/v1/customers",
        &acme.token,
        json!({"name": padding}),
    )
    .await;
    admin_reply.expect_error(413, "payload_too_large");
}

/// A method a dialect's path does not take (SPEC §3: a `405` with `Allow`) is answered in
/// that dialect's shape, like its other HTTP-level errors — EDD's too, though with the
/// `405` status its clients never see; paths whose rows answer in the common shape (the
/// root's landing page, the update checks) keep it. Nothing is activated.
#[tokio::test]
async fn a_method_a_dialects_path_does_not_take_is_a_405_in_its_shape() {
    let server = TestServer::start_with(settings()).await;
    let acme = shop(&server, "acme").await;
    let p = acme.product;
    let (_, k) = key(&server, &acme, &[p], json!({})).await;
    let send = |method: Method, path: String| {
        server
            .request(method, &path)
            .header("content-type", FORM)
            .body(format!(
                "license_key={k}&download_key={k}&instance_name=a&url=a.com"
            ))
            .send()
    };
    for (path, flag) in [
        ("/ls/acme/v1/licenses/activate", "activated"),
        ("/ls/acme/v1/licenses/validate", "valid"),
        ("/ls/acme/v1/licenses/deactivate", "deactivated"),
        ("/v1/licenses/activate", "activated"),
        ("/v1/licenses/validate", "valid"),
        ("/v1/licenses/deactivate", "deactivated"),
    ] {
        let reply = send(Method::PUT, path.to_owned()).await;
        let answer = reply.expect(405);
        assert_eq!(answer[flag], false, "{path}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains("POST"),
            "{path}: {answer}"
        );
        assert_eq!(answer["license_key"], Value::Null, "{path}");
        assert_eq!(reply.header("allow"), Some("POST"), "{path}");
    }
    for (action, allow) in [
        ("check", "GET, HEAD, POST"),
        ("activate", "GET, HEAD, POST"),
        ("deactivate", "GET, HEAD, POST"),
        ("activations", "GET, HEAD"),
    ] {
        let path = format!("/api/v1/products/{p}/download-keys/{action}");
        let reply = send(Method::DELETE, path.clone()).await;
        let answer = reply.expect(405);
        assert_eq!(answer["valid"], false, "{path}: {answer}");
        assert_eq!(answer["code"], "method_not_allowed", "{path}: {answer}");
        assert_eq!(reply.header("allow"), Some(allow), "{path}");
    }
    // HEAD where only POST is taken: the 405 and its Allow, without a body.
    let reply = server
        .request(Method::HEAD, "/v1/licenses/activate")
        .send()
        .await;
    assert_eq!(reply.status, 405, "{reply:?}");
    assert_eq!(reply.header("allow"), Some("POST"));
    assert!(reply.body.is_empty(), "{reply:?}");
    let reply = send(Method::DELETE, "/edd/acme".to_owned()).await;
    let answer = reply.expect(405);
    assert_eq!(answer["success"], false, "{answer}");
    assert_eq!(answer["error"], "method_not_allowed", "{answer}");
    assert_eq!(reply.header("allow"), Some("GET, HEAD, POST"));

    for path in [
        "/",
        "/v1/public/acme/plugins/example-plugin",
        "/updates/acme/example-plugin",
    ] {
        let reply = send(Method::PUT, path.to_owned()).await;
        reply.expect_error(405, "method_not_allowed");
        assert!(
            reply
                .header("allow")
                .is_some_and(|allow| allow.starts_with("GET, HEAD")),
            "{path}"
        );
    }
    assert_eq!(ls_usage(&server, &k).await, 0, "nothing was activated");
}

// ----- the budget of unknown keys --------------------------------------------------------

#[tokio::test]
async fn guessing_keys_spends_the_address_budget_then_every_dialect_says_rate_limited() {
    let server = TestServer::start_with(settings()).await;
    let acme = shop(&server, "acme").await;
    let p = acme.product;
    let (_, k) = key(&server, &acme, &[p], json!({})).await;
    let check = format!("/api/v1/products/{p}/download-keys/check");
    for i in 0..upkeep::defaults::PUBLIC_KEY_FAILURES_PER_MINUTE {
        get(&server, &format!("{check}?download_key=guess-{i:08}"))
            .await
            .expect(404);
    }
    // Past the budget the good key is not even looked up.
    let uc = get(&server, &format!("{check}?download_key={k}"))
        .await
        .expect(200);
    assert_eq!(
        (uc["valid"].clone(), uc["code"].clone()),
        (json!(false), json!("rate_limited"))
    );
    let edd = get(
        &server,
        &format!("/edd/acme?edd_action=check_license&license={k}&item_id={p}"),
    )
    .await
    .expect(200);
    assert_eq!(
        (edd["success"].clone(), edd["license"].clone()),
        (json!(false), json!("invalid"))
    );
    let edd = get(
        &server,
        &format!("/edd/acme?edd_action=activate_license&license={k}&item_id={p}&url=a.com"),
    )
    .await
    .expect(200);
    assert_eq!(edd["error"], "rate_limited");
    let ls = post(
        &server,
        "/ls/acme/v1/licenses/validate",
        FORM,
        format!("license_key={k}"),
    )
    .await;
    assert_eq!(ls.status, 429);
    assert_eq!(ls.expect(429)["error"], "Too many requests.");
    // A minute later the window has passed.
    server.clock.advance(Duration::from_secs(61));
    let uc = get(&server, &format!("{check}?download_key={k}"))
        .await
        .expect(200);
    assert_eq!(uc["code"], "valid");
}

#[tokio::test]
async fn activations_and_validations_are_counted_by_outcome_on_metrics() {
    let server = TestServer::start_with(settings()).await;
    let acme = shop(&server, "acme").await;
    let (_, k) = key(
        &server,
        &acme,
        &[acme.product],
        json!({"activation_limit": 1}),
    )
    .await;
    let p = acme.product;
    let path =
        |action: &str, query: &str| format!("/api/v1/products/{p}/download-keys/{action}?{query}");
    get(
        &server,
        &path(
            "activate",
            &format!("download_key={k}&domain=one.example.org"),
        ),
    )
    .await
    .expect(200);
    get(
        &server,
        &path(
            "activate",
            &format!("download_key={k}&domain=two.example.org"),
        ),
    )
    .await
    .expect(200);
    get(&server, &path("check", &format!("download_key={k}")))
        .await
        .expect(200);
    get(&server, &path("check", "download_key=no-such-key-000")).await;
    get(&server, &path("check", "domain=one.example.org"))
        .await
        .expect(400);
    let operator = server.operator_token("metrics", true, false, None);
    let text = server
        .request(Method::GET, "/metrics")
        .header("authorization", &format!("Bearer {operator}"))
        .send()
        .await;
    let text = String::from_utf8_lossy(&text.body).into_owned();
    for line in [
        "upkeep_activations_total{code=\"valid\"} 1",
        "upkeep_activations_total{code=\"activation_limit_reached\"} 1",
        "upkeep_license_validations_total{code=\"not_found\"} 1",
        "upkeep_license_validations_total{code=\"valid\"} 1",
        "upkeep_license_validations_total{code=\"missing_key\"} 1",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    // And in the product's rollup for reports (every call named the product), each
    // request once: the check, the unknown key and the keyless check as validations; the
    // two activation attempts as activations (their key checks are not validations).
    let counted = server.counted(p);
    assert_eq!(counted.validations, [1, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(counted.activations, [1, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
    assert_eq!(server.counted(acme.other), Default::default());
}

#[tokio::test]
async fn the_account_pool_and_the_daily_limit_answer_in_each_dialect() {
    // The account's pool of 3 counted activations, and at most 2 new activations of a key
    // a day (`--default-activation-limit`, `--max-activations-per-day`).
    let server = TestServer::start_with(upkeep::app::Settings {
        auth_failures_per_minute: 0,
        default_activation_limit: 3,
        max_activations_per_day: 2,
        ..upkeep::app::Settings::default()
    })
    .await;
    let acme = shop(&server, "acme").await;
    let p = acme.product;
    let uc = |k: &str, site: &str| {
        format!("/api/v1/products/{p}/download-keys/activate?download_key={k}&domain={site}")
    };
    let edd = |k: &str, site: &str| {
        format!("/edd/acme?edd_action=activate_license&license={k}&item_id={p}&url={site}")
    };
    let ls = |k: &str| format!("license_key={k}&instance_name=box");

    // Key A: its third new activation in a day is refused in every dialect's shape.
    let (_, a) = key(&server, &acme, &[p], json!({"activation_limit": 10})).await;
    for site in ["a1-shop.com", "a2-shop.com"] {
        let on = get(&server, &uc(&a, site)).await.expect(200);
        assert_eq!(on["activated"], true, "{on}");
    }
    let third = get(&server, &uc(&a, "a3-shop.com")).await.expect(200);
    assert_eq!(
        (third["activated"].clone(), third["code"].clone()),
        (json!(false), json!("rate_limited")),
        "{third}"
    );
    let by_edd = get(&server, &edd(&a, "a4-shop.com")).await.expect(200);
    assert_eq!(
        (by_edd["success"].clone(), by_edd["error"].clone()),
        (json!(false), json!("rate_limited")),
        "{by_edd}"
    );
    let by_ls = post(&server, "/ls/acme/v1/licenses/activate", FORM, ls(&a))
        .await
        .expect(429);
    assert_eq!(by_ls["activated"], false, "{by_ls}");
    // An activation already there is no new one: still valid.
    let again = get(&server, &uc(&a, "www.a1-shop.com")).await.expect(200);
    assert_eq!(again["activated"], true, "{again}");

    // Key B: one more fits the account's pool (3), the next does not.
    let (_, b) = key(&server, &acme, &[p], json!({"activation_limit": 10})).await;
    let on = get(&server, &uc(&b, "b1-shop.com")).await.expect(200);
    assert_eq!(on["activated"], true, "{on}");
    let full = get(&server, &uc(&b, "b2-shop.com")).await.expect(200);
    assert_eq!(
        (full["activated"].clone(), full["code"].clone()),
        (json!(false), json!("account_limit_reached")),
        "{full}"
    );
    let by_edd = get(&server, &edd(&b, "b3-shop.com")).await.expect(200);
    assert_eq!(
        (by_edd["success"].clone(), by_edd["error"].clone()),
        (json!(false), json!("no_activations_left")),
        "{by_edd}"
    );
    let by_ls = post(&server, "/ls/acme/v1/licenses/activate", FORM, ls(&b))
        .await
        .expect(400);
    assert_eq!(
        by_ls["error"], "This license key has reached the activation limit.",
        "{by_ls}"
    );
}
