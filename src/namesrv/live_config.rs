//! The name server's configuration over the wire: GET_NAMESRV_CONFIG (319, mqadmin
//! getNamesrvConfig) shows the keys it runs by; UPDATE_NAMESRV_CONFIG (318, mqadmin
//! updateNamesrvConfig) changes those that can change while it runs, all or nothing: a key
//! read only at start, an unknown key or a bad value refuses the whole update with a remark
//! naming it. Keys changed are kept in `runtime.properties` beside `kvConfigPath`, read at
//! the next start after the config file.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The keys that change while the name server runs.
const LIVE: [&str; 1] = ["orderMessageEnable"];

pub struct LiveConfig {
    /// Every key shown, in order, with the value in force.
    shown: RefCell<Vec<(String, String)>>,
    /// Keys changed at runtime, also those read back at start.
    changed: RefCell<BTreeMap<String, String>>,
    path: PathBuf,
    /// `orderMessageEnable`: routes carry `orderTopicConf`.
    pub order_message_enable: Cell<bool>,
}

/// Where the keys changed at runtime are kept, for a name server whose KV store is `kv`.
pub fn runtime_path(kv: &Path) -> PathBuf {
    kv.parent()
        .unwrap_or(Path::new("."))
        .join("runtime.properties")
}

/// The keys changed at runtime before the last stop, to apply over the config file: only
/// keys that may change at runtime are taken.
#[allow(clippy::disallowed_methods, reason = "start-up, before serving")]
pub fn read_changed(path: &Path) -> Result<Vec<(String, String)>, String> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let pairs = java_properties::read(std::io::BufReader::new(file))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(pairs
        .into_iter()
        .filter(|(k, _)| LIVE.contains(&k.as_str()))
        .collect())
}

impl LiveConfig {
    /// The keys shown as in force (`changed` already applied), and those changed at runtime.
    pub fn new(
        shown: Vec<(String, String)>,
        changed: Vec<(String, String)>,
        path: PathBuf,
        order_message_enable: bool,
    ) -> Self {
        LiveConfig {
            shown: RefCell::new(shown),
            changed: RefCell::new(changed.into_iter().collect()),
            path,
            order_message_enable: Cell::new(order_message_enable),
        }
    }

    /// GET_NAMESRV_CONFIG's body: `key=value` lines.
    pub fn text(&self) -> String {
        self.shown
            .borrow()
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect()
    }

    /// Applies UPDATE_NAMESRV_CONFIG's `body` (Java properties), or says why nothing changed.
    pub fn update(&self, body: &[u8]) -> Result<Vec<(String, String)>, String> {
        let pairs = java_properties::read(body)
            .map_err(|e| format!("the body is not Java properties: {e}"))?;
        if pairs.is_empty() {
            return Err("no key to change in the body".into());
        }
        let mut checked = Vec::new();
        for (key, value) in pairs {
            let value = value.trim().to_string();
            if !LIVE.contains(&key.as_str()) {
                let known = self.shown.borrow().iter().any(|(k, _)| *k == key);
                return Err(if known {
                    format!("`{key}` is read at start only: set it in the config file and restart the name server (keys that change at runtime: {})", LIVE.join(", "))
                } else {
                    format!("unknown name server config key `{key}`")
                });
            }
            let on: bool = value
                .parse()
                .map_err(|_| format!("`{key}`: bad value {value:?}, expected true or false"))?;
            checked.push((key, on));
        }
        let mut applied = Vec::new();
        for (key, on) in checked {
            // `LIVE` has one key today.
            self.order_message_enable.set(on);
            for (k, v) in self.shown.borrow_mut().iter_mut() {
                if *k == key {
                    *v = on.to_string();
                }
            }
            self.changed
                .borrow_mut()
                .insert(key.clone(), on.to_string());
            applied.push((key, on.to_string()));
        }
        Ok(applied)
    }

    /// What `runtime.properties` holds, and where it is.
    pub fn snapshot(&self) -> (PathBuf, Vec<u8>) {
        let mut text = String::from(
            "# Keys changed at runtime (UPDATE_NAMESRV_CONFIG); read after the config file.\n",
        );
        for (k, v) in self.changed.borrow().iter() {
            text.push_str(&format!("{k}={v}\n"));
        }
        (self.path.clone(), text.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path) -> LiveConfig {
        let shown = vec![
            ("namesrvListenPort".to_string(), "9876".to_string()),
            ("orderMessageEnable".to_string(), "false".to_string()),
        ];
        LiveConfig::new(shown, Vec::new(), dir.join("runtime.properties"), false)
    }

    #[test]
    fn a_live_key_changes_and_others_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let live = config(dir.path());
        let e = live.update(b"namesrvListenPort=1\n").unwrap_err();
        assert!(
            e.contains("`namesrvListenPort` is read at start only"),
            "{e}"
        );
        let e = live
            .update(b"orderMessageEnable=true\nnoSuchKey=1\n")
            .unwrap_err();
        assert!(
            e.contains("unknown name server config key `noSuchKey`"),
            "{e}"
        );
        let e = live.update(b"orderMessageEnable=yes\n").unwrap_err();
        assert!(e.contains("expected true or false"), "{e}");
        assert!(
            !live.order_message_enable.get(),
            "a refused update changed nothing"
        );
        live.update(b"orderMessageEnable=true\n").unwrap();
        assert!(live.order_message_enable.get());
        assert!(live.text().contains("orderMessageEnable=true\n"));
        let (path, bytes) = live.snapshot();
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(
            read_changed(&path).unwrap(),
            vec![("orderMessageEnable".to_string(), "true".to_string())]
        );
    }
}
