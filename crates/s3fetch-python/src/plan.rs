//! `s3fetch.plan(...)`: the library's plan of range shards, as its JSON text (the Python
//! face turns it into a dict). It runs on the process's runtime with the GIL released,
//! waking every tick to let Ctrl-C through (which stops it).

use std::path::PathBuf;
use std::sync::mpsc::{sync_channel, RecvTimeoutError};

use pyo3::prelude::*;
use s3fetch::{PlanOptions, S3Uri};

use crate::errors;
use crate::run::{payer, Connection, TICK};
use crate::runtime;

#[pyfunction]
#[pyo3(signature = (
    s3_uri, shards, *, inventory=None, max_requests=None, retries=None, region=None,
    endpoint_url=None, profile=None, no_sign_request=false, force_path_style=None,
    ca_bundle=None, credentials=None, ignore_environment=false, request_payer=None,
))]
#[allow(clippy::too_many_arguments)]
pub(crate) fn plan(
    py: Python<'_>,
    s3_uri: &str,
    shards: u32,
    inventory: Option<String>,
    max_requests: Option<u64>,
    retries: Option<u32>,
    region: Option<String>,
    endpoint_url: Option<String>,
    profile: Option<String>,
    no_sign_request: bool,
    force_path_style: Option<bool>,
    ca_bundle: Option<PathBuf>,
    credentials: Option<Py<PyAny>>,
    ignore_environment: bool,
    request_payer: Option<String>,
) -> PyResult<String> {
    let fail = |error: s3fetch::Error| errors::to_err(py, &error);
    let mut options = PlanOptions::new(S3Uri::parse(s3_uri).map_err(fail)?, shards);
    options.inventory = inventory
        .map(|uri| S3Uri::parse(&uri))
        .transpose()
        .map_err(fail)?;
    options.max_requests = max_requests;
    options.request_payer = payer(request_payer).map_err(fail)?;
    if let Some(n) = retries {
        options.retry.retries = n;
    }
    options.client_options = Connection {
        region,
        endpoint_url,
        profile,
        no_sign_request,
        force_path_style,
        ca_bundle,
        credentials,
        ignore_environment,
    }
    .client_options();
    let (sender, receiver) = sync_channel(1);
    let task = runtime::get(py)?.spawn(async move {
        let _ = sender.send(options.run().await);
    });
    let mut receiver = receiver;
    loop {
        let (received, back) = py.detach(move || (receiver.recv_timeout(TICK), receiver));
        receiver = back;
        match received {
            Ok(Ok(plan)) => return Ok(plan.to_json()),
            Ok(Err(error)) => return Err(fail(error)),
            Err(RecvTimeoutError::Timeout) => {
                if let Err(interrupt) = py.check_signals() {
                    task.abort();
                    return Err(interrupt);
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(errors::exception(
                    py,
                    "S3FetchError",
                    "the plan stopped unexpectedly".into(),
                ))
            }
        }
    }
}
