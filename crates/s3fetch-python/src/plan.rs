//! `s3fetch.plan(...)`: the library's plan of range shards, as its JSON text (the Python
//! face turns it into a dict). It runs on the process's runtime with the GIL released,
//! waking every tick to let Ctrl-C through (which stops it).

use std::sync::mpsc::{sync_channel, RecvTimeoutError};

use pyo3::prelude::*;
use pyo3::types::PyDict;
use s3fetch::{PlanOptions, S3Uri};

use crate::errors;
use crate::run::TICK;
use crate::runtime;

#[pyfunction]
#[pyo3(signature = (s3_uri, shards, options, connection))]
pub(crate) fn plan(
    py: Python<'_>,
    s3_uri: &str,
    shards: u32,
    options: &Bound<'_, PyDict>,
    connection: &Bound<'_, PyDict>,
) -> PyResult<String> {
    let fail = |error: s3fetch::Error| errors::to_err(py, &error);
    let mut plan = PlanOptions::new(S3Uri::parse(s3_uri).map_err(fail)?, shards);
    crate::options::apply_to_plan(&mut plan, options)?.map_err(fail)?;
    plan.client_options = crate::options::client_options(connection)?;
    let options = plan;
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
