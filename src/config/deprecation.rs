//! Deprecated routes (PyTake's "Deprecation Policy", issue 15 item 8): the config's
//! `deprecations:` list, checked at load against the routes catraca serves, and the lookup
//! the admin app and the gateway run per response.
//!
//! A deprecated route keeps working; its answers carry `Deprecated: true` (the PyTake
//! contract's header) and, when a date is set, `Sunset: <HTTP-date>` (RFC 8594). With no
//! entry configured the lookup is one length check.

use serde_saphyr::{Location, Spanned};

use super::raw::RawDeprecation;

/// One deprecated route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deprecation {
    /// HTTP method, upper case.
    pub method: String,
    /// The route as documented (`/api/v1/flows/{id}`): `{name}` segments match any segment.
    pub path: String,
    /// The `Sunset` header value (an IMF-fixdate, e.g. `Mon, 01 Mar 2027 00:00:00 GMT`).
    pub sunset: Option<String>,
}

impl Deprecation {
    /// Whether a request of `method` at `path` (no query) is this route.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        self.method.eq_ignore_ascii_case(method) && template_matches(&self.path, path)
    }
}

/// Whether `path` fits `template` segment by segment, a `{name}` segment matching any
/// non-empty one.
pub fn template_matches(template: &str, path: &str) -> bool {
    let mut t = template.split('/');
    let mut p = path.split('/');
    loop {
        match (t.next(), p.next()) {
            (None, None) => return true,
            (Some(ts), Some(ps)) => {
                let param = ts.len() > 2 && ts.starts_with('{') && ts.ends_with('}');
                if !(ts == ps || (param && !ps.is_empty())) {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// The entry for a request, if its route is deprecated.
pub fn find<'a>(list: &'a [Deprecation], method: &str, path: &str) -> Option<&'a Deprecation> {
    if list.is_empty() {
        return None;
    }
    list.iter().find(|d| d.matches(method, path))
}

/// Whether catraca serves `method` `path`: a gateway AI route (any method), or a route of the
/// admin app's table (`docs`, read once per load; a route another surface adds is known at
/// once).
fn known(docs: &[crate::admin::openapi::RouteDoc], method: &str, path: &str) -> bool {
    crate::gateway::ctx::Route::from_path(path).is_some()
        || docs
            .iter()
            .any(|d| d.path == path && d.method.eq_ignore_ascii_case(method))
}

/// `2027-03-01` (midnight UTC) or an RFC 3339 time, as an IMF-fixdate.
pub fn sunset(raw: &str) -> Result<String, String> {
    use time::format_description::well_known::Rfc3339;
    let raw = raw.trim();
    let at = match time::Date::parse(
        raw,
        time::macros::format_description!("[year]-[month]-[day]"),
    ) {
        Ok(d) => d.midnight().assume_utc(),
        Err(_) => time::OffsetDateTime::parse(raw, &Rfc3339)
            .map_err(|_| format!("'{raw}' is not a date (YYYY-MM-DD) or an RFC 3339 time"))?
            .to_offset(time::UtcOffset::UTC),
    };
    at.format(time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    ))
    .map_err(|e| format!("'{raw}' cannot be written as an HTTP date: {e}"))
}

/// Check the `deprecations:` entries; every problem goes to `err` with its position.
pub fn resolve(
    raw: &[Spanned<RawDeprecation>],
    err: &mut dyn FnMut(&Location, String),
) -> Vec<Deprecation> {
    let mut out: Vec<Deprecation> = Vec::new();
    if raw.is_empty() {
        return out;
    }
    let (_, docs) = crate::admin::api().into_parts();
    for (i, entry) in raw.iter().enumerate() {
        let d = &entry.value;
        let method = d.method.value.trim().to_ascii_uppercase();
        let path = d.path.value.trim().to_string();
        let mut ok = true;
        if !matches!(
            method.as_str(),
            "GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS"
        ) {
            err(
                &d.method.referenced,
                format!("deprecations[{i}].method: '{method}' is not an HTTP method"),
            );
            ok = false;
        } else if !known(&docs, &method, &path) {
            err(
                &d.path.referenced,
                format!(
                    "deprecations[{i}]: no route {method} {path} is served (write the path as \
                     /openapi.json lists it, e.g. /api/v1/flows/{{id}})"
                ),
            );
            ok = false;
        }
        let sunset = match &d.sunset {
            Some(s) => match sunset(&s.value) {
                Ok(v) => Some(v),
                Err(e) => {
                    err(&s.referenced, format!("deprecations[{i}].sunset: {e}"));
                    ok = false;
                    None
                }
            },
            None => None,
        };
        if ok && out.iter().any(|o| o.method == method && o.path == path) {
            err(
                &entry.referenced,
                format!("deprecations[{i}]: {method} {path} is listed twice"),
            );
            ok = false;
        }
        if ok {
            out.push(Deprecation {
                method,
                path,
                sunset,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_segment_by_segment() {
        assert!(template_matches("/api/v1/flows/{id}", "/api/v1/flows/abc"));
        assert!(!template_matches("/api/v1/flows/{id}", "/api/v1/flows/"));
        assert!(!template_matches("/api/v1/flows/{id}", "/api/v1/flows"));
        assert!(!template_matches("/api/v1/flows/{id}", "/api/v1/flows/a/b"));
        assert!(template_matches("/api/v1/secrets/", "/api/v1/secrets/"));
        assert!(!template_matches("/api/v1/secrets/", "/api/v1/secrets"));
        assert!(!template_matches("/api/v1/contacts", "/api/v1/contactsx"));
    }

    #[test]
    fn sunset_is_an_imf_fixdate() {
        assert_eq!(
            sunset("2027-03-01").unwrap(),
            "Mon, 01 Mar 2027 00:00:00 GMT"
        );
        assert_eq!(
            sunset("2027-03-01T12:30:00-03:00").unwrap(),
            "Mon, 01 Mar 2027 15:30:00 GMT"
        );
        for bad in ["2027-02-30", "01/03/2027", "soon", ""] {
            assert!(sunset(bad).is_err(), "{bad}");
        }
    }

    fn load(deprecations: &str) -> Result<crate::config::Config, Vec<String>> {
        let yaml = format!(
            "providers:\n  - {{name: p, base_url: \"http://127.0.0.1:9/v1\"}}\n\
             deployments:\n  - {{name: d, provider: p, model: up}}\n\
             models:\n  - {{name: m, deployments: [d]}}\n{deprecations}"
        );
        crate::config::parse_str(&yaml, std::path::Path::new("t.yaml"), &|_| None)
            .map_err(|e| e.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn config_entries_are_checked_against_the_served_routes() {
        let c = load(
            "deprecations:\n  - {method: get, path: \"/api/v1/flows/{id}\", sunset: \"2027-03-01\"}\n  - {method: POST, path: /v1/chat/completions}\n",
        )
        .unwrap();
        assert_eq!(
            c.deprecations,
            [
                Deprecation {
                    method: "GET".into(),
                    path: "/api/v1/flows/{id}".into(),
                    sunset: Some("Mon, 01 Mar 2027 00:00:00 GMT".into()),
                },
                Deprecation {
                    method: "POST".into(),
                    path: "/v1/chat/completions".into(),
                    sunset: None,
                },
            ]
        );
        assert!(load("").unwrap().deprecations.is_empty());
        let e = load(
            "deprecations:\n  - {method: GET, path: /api/v1/nope}\n  - {method: DELETE, path: /api/v1/contacts}\n  - {method: GET, path: /api/v1/contacts, sunset: 2027-13-01}\n  - {method: FETCH, path: /api/v1/contacts}\n",
        )
        .unwrap_err();
        assert_eq!(e.len(), 4, "{e:#?}");
        assert!(
            e[0].starts_with("t.yaml:8:") && e[0].contains("no route GET /api/v1/nope"),
            "{e:?}"
        );
        assert!(e[1].contains("no route DELETE /api/v1/contacts"), "{e:?}");
        assert!(
            e[2].contains("deprecations[2].sunset") && e[2].contains("2027-13-01"),
            "{e:?}"
        );
        assert!(e[3].contains("'FETCH' is not an HTTP method"), "{e:?}");
        let e = load(
            "deprecations:\n  - {method: GET, path: /api/v1/contacts}\n  - {method: GET, path: /api/v1/contacts, bogus: 1}\n",
        )
        .unwrap_err();
        assert!(e[0].contains("bogus"), "unknown fields are errors: {e:?}");
    }

    #[test]
    fn find_is_by_method_and_template() {
        let list = vec![Deprecation {
            method: "GET".into(),
            path: "/api/v1/flows/{id}".into(),
            sunset: None,
        }];
        assert!(find(&list, "GET", "/api/v1/flows/x").is_some());
        assert!(find(&list, "get", "/api/v1/flows/x").is_some());
        assert!(find(&list, "PUT", "/api/v1/flows/x").is_none());
        assert!(find(&[], "GET", "/api/v1/flows/x").is_none());
    }
}
