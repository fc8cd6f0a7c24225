//! The persisted operator (admin) state.
//!
//! Format (JSON): `{"version": 1, "admin": {"pop-name": "down", ...}}`.
//! Only PoPs whose admin state is not `auto` are listed.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{AdminState, HealthError};

#[derive(Serialize, Deserialize, Default)]
struct StateFile {
    #[serde(default = "version_one")]
    version: u32,
    #[serde(default)]
    admin: BTreeMap<String, AdminState>,
}

fn version_one() -> u32 {
    1
}

/// Loads the admin states from `path`. A missing file is an empty state.
pub(crate) fn load(path: &Path) -> Result<BTreeMap<String, AdminState>, HealthError> {
    let bad = |message: String| HealthError::StateFile {
        path: path.to_path_buf(),
        message,
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(bad(e.to_string())),
    };
    let file: StateFile = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    if file.version != 1 {
        return Err(bad(format!("unsupported version {}", file.version)));
    }
    Ok(file.admin)
}

/// Writes the admin states to `path` atomically (temporary file in the same
/// directory, fsync, rename).
pub(crate) fn save(path: &Path, admin: &BTreeMap<String, AdminState>) -> Result<(), HealthError> {
    let persist = |e: std::io::Error| HealthError::Persist {
        path: path.to_path_buf(),
        source: e,
    };
    let file = StateFile {
        version: 1,
        admin: admin
            .iter()
            .filter(|(_, s)| **s != AdminState::Auto)
            .map(|(k, v)| (k.clone(), *v))
            .collect(),
    };
    let mut text = serde_json::to_vec_pretty(&file)
        .map_err(|e| persist(std::io::Error::other(e.to_string())))?;
    text.push(b'\n');
    let tmp = tmp_path(path);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(persist(e));
    }
    // Make the rename durable; failure here is not worth reporting.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "health-state".into());
    name.push(format!(".tmp.{}", std::process::id()));
    path.with_file_name(name)
}
