//! `GET /v1/models` (#14 item 3): OpenAI's `{object, data}` and Tokia's `{models}` in one
//! body by default, one shape per listener with `models_list`, public without a key, 401 with
//! a bad one, and Tokia's `category` filter (`chat` = `llm`; embedding and audio models only
//! under their own filter). The OpenAI SDK's parse of the default body is in `sdk.rs`.

use serde_json::{Value, json};

use crate::common::*;

fn body(mock: &Mock) -> String {
    format!(
        "pricing: {{default_markup: \"1.25\"}}\nproviders:\n  - {{name: p, base_url: \"{}\"}}\ndeployments:\n  - {{name: d, provider: p, model: up}}\nmodels:\n  - {{name: chat-model, aliases: [chat-alias], owned_by: deepseek, markup_multiplier: \"1.3\", deployments: [d]}}\n  - {{name: instr, category: completion, deployments: [d]}}\n  - {{name: emb, category: embedding, deployments: [d]}}\n  - {{name: img, category: image, deployments: [d]}}\n  - {{name: aud, category: audio, deployments: [d]}}\n  - {{name: ocr, category: ocr, deployments: [d]}}\n",
        mock.base()
    )
}

async fn get(url: String, key: Option<&str>) -> (u16, Value) {
    let mut rb = reqwest::Client::new().get(url);
    if let Some(k) = key {
        rb = rb.header("authorization", k);
    }
    let r = rb.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap())
}

fn ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn one_body_for_both_contracts_and_one_shape_per_listener() {
    let mock = Mock::start().await;
    let (p_openai, p_tokia) = (free_port(), free_port());
    let gw = Gateway::start_edited(&body(&mock), &[], |yaml| {
        let (first, rest) = yaml.split_once('\n').unwrap();
        let own = first.trim_start_matches("listen: [").trim_end_matches(']');
        format!(
            "listen: [{own}, {{addr: \"127.0.0.1:{p_openai}\", models_list: openai}}, {{addr: \"127.0.0.1:{p_tokia}\", models_list: tokia}}]\n{rest}"
        )
    })
    .await;

    // public: no key needed; the default shape holds both lists
    let (s, all) = get(gw.url("/v1/models"), None).await;
    assert_eq!(s, 200, "{all}");
    assert_eq!(all["object"], "list");
    assert_eq!(
        ids(&all["data"]),
        [
            "chat-model",
            "chat-alias",
            "instr",
            "emb",
            "img",
            "aud",
            "ocr"
        ],
        "OpenAI's list holds every model"
    );
    // Tokia's list: llm, image and video only without a filter
    assert_eq!(
        ids(&all["models"]),
        ["chat-model", "chat-alias", "instr", "img"]
    );
    assert_eq!(
        all["models"][0],
        json!({"id": "chat-model", "display_name": "chat-model", "category": "llm",
               "upstream": "deepseek", "markup_multiplier": 1.3, "description": null})
    );
    assert_eq!(
        all["models"][2]["markup_multiplier"],
        json!(1.25),
        "the default markup"
    );
    assert_eq!(all["models"][3]["category"], "image");
    assert_eq!(all["data"][0]["object"], "model");

    // a good key sees the same list; a bad or malformed one is refused
    let (s, with_key) = get(gw.url("/v1/models"), Some(&format!("Bearer {KEY}"))).await;
    assert_eq!((s, &with_key), (200, &all));
    for bad in [
        "Bearer sk-tokia-wrong",
        "Basic dXNlcjpwYXNz",
        "Bearer ",
        "Bearer sk-off",
    ] {
        let (s, e) = get(gw.url("/v1/models"), Some(bad)).await;
        assert_eq!(s, 401, "{bad}: {e}");
        assert!(e["error"]["message"].is_string(), "{e}");
    }
    let (s, e) = get(
        gw.url("/v1/models"),
        Some(&format!("Bearer {DISABLED_KEY}")),
    )
    .await;
    assert_eq!(s, 401, "{e}");

    // filters: chat = llm; embedding and audio only under their own
    for (filter, want) in [
        ("llm", vec!["chat-model", "chat-alias", "instr"]),
        ("chat", vec!["chat-model", "chat-alias", "instr"]),
        ("image", vec!["img"]),
        ("video", vec![]),
        ("embedding", vec!["emb"]),
        ("audio", vec!["aud"]),
    ] {
        let (s, l) = get(gw.url(&format!("/v1/models?category={filter}")), None).await;
        assert_eq!(s, 200, "{filter}: {l}");
        assert_eq!(ids(&l["models"]), want, "{filter}");
        assert_eq!(ids(&l["data"]), want, "{filter}: data follows the filter");
    }
    assert_eq!(
        get(gw.url("/v1/models?category=embedding"), None).await.1["models"][0]["category"],
        "embedding"
    );
    for bad in ["ocr", "LLM", "x%00", "chat&category=image"] {
        let (s, e) = get(gw.url(&format!("/v1/models?category={bad}")), None).await;
        if bad.starts_with("chat&") {
            // the first value counts
            assert_eq!(s, 200, "{e}");
            continue;
        }
        assert_eq!(s, 400, "{bad}: {e}");
        assert_eq!(e["error"]["type"], "invalid_request_error", "{e}");
    }

    // another method on the route
    let r = reqwest::Client::new()
        .post(gw.url("/v1/models"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);

    // one shape per listener
    let (s, o) = get(format!("http://127.0.0.1:{p_openai}/v1/models"), None).await;
    assert_eq!(s, 200);
    assert_eq!(o, json!({"object": "list", "data": all["data"]}));
    let (s, t) = get(format!("http://127.0.0.1:{p_tokia}/v1/models"), None).await;
    assert_eq!(s, 200);
    assert_eq!(t, json!({"models": all["models"]}));
    assert_eq!(mock.requests().await, 0, "nothing reached the provider");
}

#[test]
fn a_bad_models_list_is_a_config_error() {
    let dir = scratch();
    let path = dir.join("c.yaml");
    std::fs::write(
        &path,
        "listen: [{addr: \"127.0.0.1:1\", models_list: maxai}]\nproviders: []\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_catraca"))
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("listen[0].models_list"), "{err}");
    assert!(
        err.contains("models_list") && err.contains("maxai"),
        "{err}"
    );
}
