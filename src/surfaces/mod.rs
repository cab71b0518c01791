//! Contract surfaces: each parses its contract's requests, calls `crate::domain`, and renders
//! its contract's answers and error shape. No SQL and no business rules here (a test below
//! fails when a surface names the SQL crate).

pub mod bradax;
pub mod kit;
pub mod maxai;
pub mod operator;
pub mod pytake;
pub mod sabia;
pub mod tokia;

#[cfg(test)]
mod tests {
    /// Every `.rs` file under `src/surfaces/`.
    fn sources(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                sources(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }

    #[test]
    fn surfaces_never_touch_sql() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/surfaces");
        let mut files = Vec::new();
        sources(&root, &mut files);
        assert!(files.len() >= 3, "surfaces not found under {root:?}");
        let needle = ["sq", "lx"].concat();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            assert!(
                !text.contains(&needle),
                "{} mentions {needle}: SQL belongs in store/, rules in domain/",
                f.display()
            );
        }
    }

    #[test]
    fn only_the_store_runs_statements() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&src, &mut files);
        assert!(files.len() > 20, "sources not found under {src:?}");
        let needle = ["sq", "lx::qu", "ery"].concat();
        for f in files {
            if f.starts_with(src.join("store")) {
                continue;
            }
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            assert!(
                !text.contains(&needle),
                "{} runs a statement: SQL belongs in store/",
                f.display()
            );
        }
    }
}
