//! The secrets vault's domain against the real database (no HTTP routes yet): envelope
//! encryption, master key rotation, moved blobs, inactive secrets, usage statistics, no
//! plaintext in any column, and the `test` check against the mock upstream.

use std::time::Duration;

use catraca::domain::error::{Conflict, DomainError, Entity};
use catraca::domain::vault::{
    self, Change, Environment, Filter, NewSecret, ProviderCheck, Status, TestOutcome, TestTargets,
    Who,
};
use catraca::secrets::SecretBox;
use serde_json::json;
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::common::{Mock, free_port};

fn k1() -> String {
    "11".repeat(32)
}
fn k2() -> String {
    "22".repeat(32)
}
fn v1() -> SecretBox {
    SecretBox::from_hex(&k1()).unwrap()
}
fn v1_v2() -> SecretBox {
    SecretBox::parse_versions(&format!("1:{},2:{}", k1(), k2())).unwrap()
}

async fn org(pool: &PgPool, name: &str) -> Who {
    let id: Uuid =
        sqlx::query_scalar("INSERT INTO organization (name) VALUES ($1) RETURNING organization_id")
            .bind(name)
            .fetch_one(pool)
            .await
            .unwrap();
    Who {
        organization_id: id,
        user_id: None,
    }
}

fn new(name: &str, value: &str, service: Option<&str>) -> NewSecret {
    NewSecret {
        name: name.into(),
        value: value.into(),
        environment: None,
        service: service.map(Into::into),
        description: None,
    }
}

/// The row as JSON text (bytea shows as `\x<hex>`) plus its two sealed columns as bytes.
async fn raw(pool: &PgPool, id: Uuid) -> (String, Vec<u8>, Vec<u8>, i32) {
    let r = sqlx::query(
        "SELECT row_to_json(s)::text AS j, value_sealed, data_key_sealed, master_version
         FROM vault_secret s WHERE secret_id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .unwrap();
    (
        r.get("j"),
        r.get("value_sealed"),
        r.get("data_key_sealed"),
        r.get("master_version"),
    )
}

async fn audit_actions(pool: &PgPool, id: Uuid) -> Vec<String> {
    sqlx::query_scalar("SELECT action FROM audit_log WHERE target = $1 ORDER BY audit_log_id")
        .bind(format!("secret:{id}"))
        .fetch_all(pool)
        .await
        .unwrap()
}

#[sqlx::test(migrations = "./migrations")]
async fn round_trip_metadata_only_and_no_plaintext_anywhere(pool: PgPool) {
    let keys = v1();
    let who = org(&pool, "acme").await;
    let plain = "sk-proj-PLAINTEXT-abc123";
    let s = vault::create(&pool, &keys, &who, new("OPENAI_KEY", plain, Some("openai")))
        .await
        .unwrap();
    assert_eq!(s.name, "OPENAI_KEY");
    assert_eq!(s.environment, Environment::Production);
    assert_eq!(s.status, Status::Active);
    assert_eq!(s.master_version, 1);
    assert!(s.last_rotated_at.is_none());
    assert!(
        !format!("{s:?}").contains(plain),
        "metadata carries no value"
    );

    // no column holds the plaintext, as text or as bytes (nor its hex)
    let (j, vs, dk, ver) = raw(&pool, s.id).await;
    assert_eq!(ver, 1);
    assert!(
        !j.contains(plain) && !j.contains(&hex::encode(plain)),
        "{j}"
    );
    for col in [&vs, &dk] {
        assert!(!col.windows(plain.len()).any(|w| w == plain.as_bytes()));
    }
    assert_eq!(
        &dk[..7],
        b"CK1\0\0\0\x01",
        "data key sealed by master version 1"
    );
    // nor the audit log
    let a: String = sqlx::query_scalar(
        "SELECT coalesce(string_agg(row_to_json(a)::text, ''), '') FROM audit_log a",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(!a.contains(plain));

    let v = vault::reveal(&pool, &keys, &who, s.id).await.unwrap();
    assert_eq!(v.expose(), plain);
    assert!(!format!("{v:?}").contains(plain));
    assert_eq!(
        audit_actions(&pool, s.id).await,
        ["secret.create", "secret.value_read"],
        "the read is audited"
    );

    // get / list with filters
    assert_eq!(vault::get(&pool, &who, s.id).await.unwrap().id, s.id);
    vault::create(
        &pool,
        &keys,
        &who,
        NewSecret {
            environment: Some("staging".into()),
            ..new("WA_TOKEN", "EAAG-token", Some("whatsapp"))
        },
    )
    .await
    .unwrap();
    let all = vault::list(&pool, &who, Filter::default()).await.unwrap();
    assert_eq!(
        all.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["OPENAI_KEY", "WA_TOKEN"]
    );
    let f = Filter {
        environment: Some("staging"),
        service: None,
    };
    assert_eq!(vault::list(&pool, &who, f).await.unwrap().len(), 1);
    let f = Filter {
        environment: None,
        service: Some("openai"),
    };
    assert_eq!(vault::list(&pool, &who, f).await.unwrap()[0].id, s.id);
    let f = Filter {
        environment: Some("prod"),
        service: None,
    };
    assert!(matches!(
        vault::list(&pool, &who, f).await,
        Err(DomainError::Invalid {
            field: "environment",
            ..
        })
    ));

    // same name in the same environment: conflict; another organization: not found
    assert!(matches!(
        vault::create(&pool, &keys, &who, new("OPENAI_KEY", "x", None)).await,
        Err(DomainError::Conflict(Conflict::SecretNameTaken))
    ));
    let other = org(&pool, "other").await;
    for r in [
        vault::get(&pool, &other, s.id).await.map(|_| ()),
        vault::reveal(&pool, &keys, &other, s.id).await.map(|_| ()),
        vault::delete(&pool, &other, s.id).await,
    ] {
        assert!(matches!(r, Err(DomainError::NotFound(Entity::Secret))));
    }
    assert!(
        vault::list(&pool, &other, Filter::default())
            .await
            .unwrap()
            .is_empty()
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn bad_input_is_refused_before_anything_changes(pool: PgPool) {
    let keys = v1();
    let who = org(&pool, "acme").await;
    for (n, v, field) in [
        ("", "x", "key"),
        ("a\0b", "x", "key"),
        (&"n".repeat(201) as &str, "x", "key"),
        ("ok", "", "value"),
        ("ok", "a\0", "value"),
        ("ok", &"v".repeat(16 * 1024 + 1), "value"),
    ] {
        match vault::create(&pool, &keys, &who, new(n, v, None)).await {
            Err(DomainError::Invalid { field: f, .. }) => assert_eq!(f, field),
            r => panic!("{n:?}: {r:?}"),
        }
    }
    let bad_env = NewSecret {
        environment: Some("prod".into()),
        ..new("ok", "x", None)
    };
    assert!(vault::create(&pool, &keys, &who, bad_env).await.is_err());
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM vault_secret")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 0);

    let s = vault::create(&pool, &keys, &who, new("ok", "x", None))
        .await
        .unwrap();
    let bad = Change {
        name: Some("fine".into()),
        value: Some("a\0".into()),
        ..Change::default()
    };
    assert!(vault::update(&pool, &keys, &who, s.id, bad).await.is_err());
    assert_eq!(
        vault::get(&pool, &who, s.id).await.unwrap().name,
        "ok",
        "nothing changed"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn a_blob_moved_to_another_row_or_organization_does_not_open(pool: PgPool) {
    let keys = v1();
    let a = org(&pool, "a").await;
    let b = org(&pool, "b").await;
    let sa = vault::create(&pool, &keys, &a, new("A", "value-of-a", None))
        .await
        .unwrap();
    let sa2 = vault::create(&pool, &keys, &a, new("A2", "value-of-a2", None))
        .await
        .unwrap();
    let sb = vault::create(&pool, &keys, &b, new("B", "value-of-b", None))
        .await
        .unwrap();
    // copy A's sealed columns over A2 (same organization) and over B (another one)
    for target in [sa2.id, sb.id] {
        sqlx::query(
            "UPDATE vault_secret t SET value_sealed = s.value_sealed, data_key_sealed = s.data_key_sealed
             FROM vault_secret s WHERE s.secret_id = $1 AND t.secret_id = $2",
        )
        .bind(sa.id)
        .bind(target)
        .execute(&pool)
        .await
        .unwrap();
    }
    assert!(matches!(
        vault::reveal(&pool, &keys, &a, sa2.id).await,
        Err(DomainError::Internal)
    ));
    assert!(matches!(
        vault::reveal(&pool, &keys, &b, sb.id).await,
        Err(DomainError::Internal)
    ));
    assert!(matches!(
        vault::use_value(&pool, &keys, b.organization_id, sb.id).await,
        Err(DomainError::Internal)
    ));
    // a refused read writes no audit row
    assert_eq!(audit_actions(&pool, sb.id).await, ["secret.create"]);
    // only the data key moved: still refused
    sqlx::query(
        "UPDATE vault_secret t SET data_key_sealed = s.data_key_sealed
         FROM vault_secret s WHERE s.secret_id = $1 AND t.secret_id = $2",
    )
    .bind(sa.id)
    .bind(sa2.id)
    .execute(&pool)
    .await
    .unwrap();
    assert!(vault::reveal(&pool, &keys, &a, sa2.id).await.is_err());
    // the original still opens
    assert_eq!(
        vault::reveal(&pool, &keys, &a, sa.id)
            .await
            .unwrap()
            .expose(),
        "value-of-a"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn master_key_rotation_and_rewrap(pool: PgPool) {
    let who = org(&pool, "acme").await;
    let old = v1();
    let s1 = vault::create(&pool, &old, &who, new("ONE", "first-value", None))
        .await
        .unwrap();
    let s2 = vault::create(&pool, &old, &who, new("TWO", "second-value", None))
        .await
        .unwrap();
    let (_, vs_before, _, _) = raw(&pool, s1.id).await;

    // add version 2: v1 blobs still open, new secrets are sealed with v2
    let both = v1_v2();
    assert_eq!(
        vault::reveal(&pool, &both, &who, s1.id)
            .await
            .unwrap()
            .expose(),
        "first-value"
    );
    let s3 = vault::create(&pool, &both, &who, new("THREE", "third-value", None))
        .await
        .unwrap();
    assert_eq!(s3.master_version, 2);
    // a process that only knows v1 cannot open a v2 secret
    assert!(vault::reveal(&pool, &old, &who, s3.id).await.is_err());

    // rotate one: fresh data key under v2, same value, last_rotated_at set
    let r = vault::rotate(&pool, &both, &who, s1.id, None)
        .await
        .unwrap();
    assert_eq!(r.master_version, 2);
    assert!(r.last_rotated_at.is_some());
    let (_, vs_after, dk_after, ver) = raw(&pool, s1.id).await;
    assert_eq!(ver, 2);
    assert_eq!(&dk_after[..7], b"CK1\0\0\0\x02");
    assert_ne!(vs_before, vs_after, "re-encrypted under a fresh data key");
    assert_eq!(
        vault::reveal(&pool, &both, &who, s1.id)
            .await
            .unwrap()
            .expose(),
        "first-value"
    );

    // rotate with a value: replaced
    let r = vault::rotate(&pool, &both, &who, s1.id, Some("new-value".into()))
        .await
        .unwrap();
    assert!(r.last_rotated_at.is_some());
    assert_eq!(
        vault::reveal(&pool, &both, &who, s1.id)
            .await
            .unwrap()
            .expose(),
        "new-value"
    );

    // re-wrap the rest: only s2 was still under v1; its value blob is untouched
    let (_, vs2, _, _) = raw(&pool, s2.id).await;
    assert!(vault::rewrap_older(&pool, &both, 0).await.is_err());
    assert_eq!(vault::rewrap_older(&pool, &both, 100).await.unwrap(), 1);
    assert_eq!(vault::rewrap_older(&pool, &both, 100).await.unwrap(), 0);
    let (_, vs2_after, _, ver2) = raw(&pool, s2.id).await;
    assert_eq!((ver2, vs2_after), (2, vs2));
    assert!(
        vault::get(&pool, &who, s2.id)
            .await
            .unwrap()
            .last_rotated_at
            .is_none()
    );

    // now v1 can be dropped: v2 alone opens everything
    let only2 = SecretBox::parse_versions(&format!("2:{}", k2())).unwrap();
    for (id, v) in [
        (s1.id, "new-value"),
        (s2.id, "second-value"),
        (s3.id, "third-value"),
    ] {
        assert_eq!(
            vault::reveal(&pool, &only2, &who, id)
                .await
                .unwrap()
                .expose(),
            v
        );
    }
    // and a v1-only process opens none of them any more
    assert!(vault::reveal(&pool, &old, &who, s2.id).await.is_err());

    // an update with a value is a rotation too; without one it is not
    let u = vault::update(
        &pool,
        &only2,
        &who,
        s2.id,
        Change {
            description: Some(Some("ops".into())),
            ..Change::default()
        },
    )
    .await
    .unwrap();
    assert!(u.last_rotated_at.is_none());
    assert_eq!(u.description.as_deref(), Some("ops"));
    let u = vault::update(
        &pool,
        &only2,
        &who,
        s2.id,
        Change {
            value: Some("updated".into()),
            service: Some(Some("openai".into())),
            ..Change::default()
        },
    )
    .await
    .unwrap();
    assert!(u.last_rotated_at.is_some());
    assert_eq!(u.service.as_deref(), Some("openai"));
    assert_eq!(
        vault::reveal(&pool, &only2, &who, s2.id)
            .await
            .unwrap()
            .expose(),
        "updated"
    );
}

#[sqlx::test(migrations = "./migrations")]
async fn inactive_secrets_are_never_used_and_usage_is_counted(pool: PgPool) {
    let keys = v1();
    let who = org(&pool, "acme").await;
    let s = vault::create(&pool, &keys, &who, new("K", "val", None))
        .await
        .unwrap();
    let idle = vault::create(&pool, &keys, &who, new("IDLE", "val2", None))
        .await
        .unwrap();
    let org_id = who.organization_id;

    // never used: zeros, no rate, no last use
    let u = vault::usage(&pool, &who, s.id).await.unwrap();
    assert_eq!(
        (u.total_requests, u.succeeded, u.last_used_at),
        (0, 0, None)
    );
    assert_eq!(u.success_rate(), None);

    assert_eq!(
        vault::use_value(&pool, &keys, org_id, s.id)
            .await
            .unwrap()
            .expose(),
        "val"
    );
    for ok in [true, true, true, false] {
        vault::record_use(&pool, org_id, s.id, ok, "whatsapp.send")
            .await
            .unwrap();
    }
    let u = vault::usage(&pool, &who, s.id).await.unwrap();
    assert_eq!((u.total_requests, u.succeeded), (4, 3));
    assert_eq!(u.success_rate(), Some(0.75));
    assert!(u.last_used_at.is_some());
    assert!(
        vault::record_use(&pool, org_id, s.id, true, "")
            .await
            .is_err()
    );

    let d = vault::set_active(&pool, &who, s.id, false).await.unwrap();
    assert_eq!(d.status, Status::Inactive);
    assert!(matches!(
        vault::use_value(&pool, &keys, org_id, s.id).await,
        Err(DomainError::Conflict(Conflict::SecretInactive))
    ));
    // a refused use is not counted
    assert_eq!(
        vault::usage(&pool, &who, s.id)
            .await
            .unwrap()
            .total_requests,
        4
    );
    // reactivated: usable again
    vault::set_active(&pool, &who, s.id, true).await.unwrap();
    assert!(vault::use_value(&pool, &keys, org_id, s.id).await.is_ok());

    // per organization: every secret, never-used ones with zeros
    let all = vault::usage_by_org(&pool, &who).await.unwrap();
    assert_eq!(all.len(), 2);
    let a = all.iter().find(|x| x.secret_id == s.id).unwrap();
    assert_eq!((a.total_requests, a.succeeded), (4, 3));
    let b = all.iter().find(|x| x.secret_id == idle.id).unwrap();
    assert_eq!((b.total_requests, b.succeeded), (0, 0));
    let other = org(&pool, "other").await;
    assert!(vault::usage_by_org(&pool, &other).await.unwrap().is_empty());
    assert!(vault::usage(&pool, &other, s.id).await.is_err());
    assert!(
        vault::record_use(&pool, other.organization_id, s.id, true, "x")
            .await
            .is_err()
    );

    // delete takes the history with it
    vault::delete(&pool, &who, s.id).await.unwrap();
    assert!(matches!(
        vault::get(&pool, &who, s.id).await,
        Err(DomainError::NotFound(Entity::Secret))
    ));
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM vault_secret_use WHERE secret_id = $1")
        .bind(s.id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
    assert_eq!(
        audit_actions(&pool, s.id).await,
        [
            "secret.create",
            "secret.deactivate",
            "secret.activate",
            "secret.delete"
        ]
    );
}

/// The mock's `/v1/models` accepts any key but `sk-invalid…`, so this checks that the check
/// really calls the service, reads its status and records the use (a 401 is forced through
/// the mock's knobs here; `tests/pytake_contract.rs` has a key the mock refuses).
#[sqlx::test(migrations = "./migrations")]
async fn test_checks_known_services_for_real_and_says_so_for_others(pool: PgPool) {
    let keys = v1();
    let who = org(&pool, "acme").await;
    let mock = Mock::start().await;
    let targets = TestTargets {
        providers: vec![ProviderCheck {
            service: "openai".into(),
            base_url: mock.base(),
        }],
        graph_base_url: Some(format!("http://{}/graph/v19.0", mock.addr)),
        timeout: Duration::from_secs(5),
    };
    let p = vault::create(&pool, &keys, &who, new("OPENAI", "sk-test", Some("OpenAI")))
        .await
        .unwrap();
    let before = mock.requests().await;
    let out = vault::test(&pool, &keys, &who, p.id, &targets)
        .await
        .unwrap();
    assert!(out.valid(), "{out:?}");
    assert_eq!(
        out,
        TestOutcome::Valid {
            checked: format!("{}/models", mock.base())
        }
    );
    assert_eq!(mock.requests().await, before + 1, "a real call");

    mock.set(json!({"fail_status": 401, "fail_rate": 1.0}))
        .await;
    let out = vault::test(&pool, &keys, &who, p.id, &targets)
        .await
        .unwrap();
    assert_eq!(out, TestOutcome::Rejected { status: 401 });
    assert!(!out.valid());
    assert!(out.message().contains("refused the credential"));
    mock.set(json!({"fail_rate": 0.0})).await;

    let u = vault::usage(&pool, &who, p.id).await.unwrap();
    assert_eq!(
        (u.total_requests, u.succeeded),
        (2, 1),
        "each check is a use"
    );

    // WhatsApp: the Graph base's /me (the mock's Graph stand-in refuses a token containing
    // `invalid`)
    let w = vault::create(&pool, &keys, &who, new("WA", "EAAG", Some("whatsapp")))
        .await
        .unwrap();
    let out = vault::test(&pool, &keys, &who, w.id, &targets)
        .await
        .unwrap();
    assert_eq!(
        out,
        TestOutcome::Valid {
            checked: format!("http://{}/graph/v19.0/me", mock.addr)
        }
    );
    let bad = vault::create(
        &pool,
        &keys,
        &who,
        new("WA2", "EAAG-invalid", Some("whatsapp")),
    )
    .await
    .unwrap();
    let out = vault::test(&pool, &keys, &who, bad.id, &targets)
        .await
        .unwrap();
    assert_eq!(out, TestOutcome::Rejected { status: 401 });

    // unknown service and no service: honest, no call, no use
    let x = vault::create(&pool, &keys, &who, new("STRIPE", "sk_live", Some("stripe")))
        .await
        .unwrap();
    let n = vault::create(&pool, &keys, &who, new("PLAIN", "v", None))
        .await
        .unwrap();
    let before = mock.requests().await;
    let out = vault::test(&pool, &keys, &who, x.id, &targets)
        .await
        .unwrap();
    assert_eq!(
        out,
        TestOutcome::NotCheckable {
            service: Some("stripe".into())
        }
    );
    assert!(!out.valid() && out.message().contains("cannot be checked"));
    assert!(matches!(
        vault::test(&pool, &keys, &who, n.id, &targets)
            .await
            .unwrap(),
        TestOutcome::NotCheckable { service: None }
    ));
    assert_eq!(
        vault::usage(&pool, &who, x.id)
            .await
            .unwrap()
            .total_requests,
        0
    );

    // nothing listening
    let dead = TestTargets {
        providers: vec![ProviderCheck {
            service: "openai".into(),
            base_url: format!("http://127.0.0.1:{}/v1", free_port()),
        }],
        ..targets.clone()
    };
    let out = vault::test(&pool, &keys, &who, p.id, &dead).await.unwrap();
    assert!(matches!(out, TestOutcome::Failed { .. }), "{out:?}");
    assert!(!out.message().contains("sk-test"));

    // inactive: refused, no call
    vault::set_active(&pool, &who, p.id, false).await.unwrap();
    assert!(matches!(
        vault::test(&pool, &keys, &who, p.id, &targets).await,
        Err(DomainError::Conflict(Conflict::SecretInactive))
    ));
    assert_eq!(mock.requests().await, before);
}
