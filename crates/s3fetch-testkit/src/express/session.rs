//! S3 Express sessions: the temporary keys (access key, secret, token, expiring five
//! minutes later, as S3 Express's do) CreateSession hands out for one directory bucket,
//! which the `s3express` signature check (`sigv4.rs`) looks up. A leaf: `state.rs` holds
//! the [`Sessions`].

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use rand::distr::{Alphanumeric, SampleString};

/// How long session credentials last.
pub(crate) const SESSION_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// One session's keys.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) secret: String,
    pub(crate) token: String,
    /// The directory bucket the session is for.
    pub(crate) bucket: String,
    pub(crate) expires: SystemTime,
}

/// The sessions handed out, by access key.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    by_key: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// A new session for `bucket`: its access key and keys. Forgets expired sessions.
    pub(crate) fn create(&self, bucket: &str) -> (String, Session) {
        let mut rng = rand::rng();
        let key = format!("S3EXPRESS{}", Alphanumeric.sample_string(&mut rng, 16)).to_uppercase();
        let session = Session {
            secret: Alphanumeric.sample_string(&mut rng, 40),
            token: Alphanumeric.sample_string(&mut rng, 96),
            bucket: bucket.to_owned(),
            expires: SystemTime::now() + SESSION_LIFETIME,
        };
        let mut map = self.by_key.lock().unwrap_or_else(PoisonError::into_inner);
        let now = SystemTime::now();
        map.retain(|_, s| s.expires > now);
        map.insert(key.clone(), session.clone());
        (key, session)
    }

    /// The session of `access_key`, expired or not.
    pub(crate) fn get(&self, access_key: &str) -> Option<Session> {
        self.by_key
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(access_key)
            .cloned()
    }
}
