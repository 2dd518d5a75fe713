//! [`Store`] on the AWS SDK's client, for one bucket, following the bucket to its region.
//!
//! A bucket in another region than the client's answers with a redirect (`301
//! PermanentRedirect`), an `AuthorizationHeaderMalformed` naming its `<Region>`, or an
//! `x-amz-bucket-region` header (a HEAD's only word, having no body). The request is sent
//! again at once, signed for that region (and, on AWS's own endpoints, to the regional
//! endpoint; a custom endpoint stays as it is), and every later request of the run goes there:
//! no extra request when the region was right, two when it was wrong.

use std::future::Future;
use std::sync::{Arc, RwLock};

use aws_config::Region;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{OptionalObjectAttributes, RequestPayer};
use aws_sdk_s3::Client;
use futures::future::BoxFuture;
use futures::stream;

use super::client::Direct;
use super::lean::Lean;
use super::{ByteRange, GetResponse, ListRequest, ObjectHead, Settings, Store};
use crate::checksum::Expected;
use crate::error::ServiceError;
use crate::s3::client::Connection;
use crate::s3::list_xml::{ListReader, Listing, TakeListBody};
use crate::uri::directory_bucket_region;

/// The AWS SDK's client, for one bucket, and its GETs sent without the SDK where they can
/// be (see [`super::lean`]).
pub(crate) struct S3 {
    bucket: String,
    settings: Settings,
    /// What the lean GETs are rebuilt from when the bucket moves to another region.
    direct: Option<Direct>,
    /// Where requests go now.
    route: RwLock<Arc<Route>>,
    /// One move at a time: requests refused at once all wait for the one new route.
    moving: tokio::sync::Mutex<()>,
}

/// The client (and lean GETs) for the bucket's region as far as the run knows it.
struct Route {
    client: Client,
    lean: Option<Lean>,
}

impl Route {
    fn region(&self) -> Option<&str> {
        self.client.config().region().map(Region::as_ref)
    }
}

impl S3 {
    /// The connection's client configured for the run (see [`configure`]), its GETs sent
    /// without it where they can be.
    pub(crate) async fn new(connection: &Connection, bucket: String, settings: Settings) -> Self {
        let client = configure(connection.client.clone(), settings);
        let lean = match &connection.direct {
            Some(direct) => Lean::new(direct, &client, &bucket, settings).await,
            None => None,
        };
        let s3 = S3 {
            bucket,
            settings,
            direct: connection.direct.clone(),
            route: RwLock::new(Arc::new(Route { client, lean })),
            moving: tokio::sync::Mutex::new(()),
        };
        // A directory bucket's region is in its name, and a request sent to another region's
        // zonal endpoint gets no redirect: go there before the first request.
        if let Some(region) = settings
            .directory
            .then(|| directory_bucket_region(&s3.bucket))
            .flatten()
        {
            let from = s3.route();
            if from.region() != Some(region.as_str()) {
                s3.move_to(&from, &region).await;
            }
        }
        s3
    }

    /// Every request through the SDK's `client`, configured for the run.
    pub(crate) fn sdk(client: Client, bucket: String, settings: Settings) -> Self {
        S3 {
            bucket,
            settings,
            direct: None,
            route: RwLock::new(Arc::new(Route {
                client: configure(client, settings),
                lean: None,
            })),
            moving: tokio::sync::Mutex::new(()),
        }
    }

    fn route(&self) -> Arc<Route> {
        self.route.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sends `request` on the current route; if the answer says the bucket is in another
    /// region, moves there and sends it once more.
    async fn follow<'a, T, F, Fut>(&'a self, request: F) -> Result<T, ServiceError>
    where
        F: Fn(Arc<Route>) -> Fut,
        Fut: Future<Output = Result<T, ServiceError>> + 'a,
    {
        let route = self.route();
        let error = match request(route.clone()).await {
            Ok(answer) => return Ok(answer),
            Err(error) => error,
        };
        let Some(region) = error.move_to(route.region()) else {
            return Err(error);
        };
        let moved = self.move_to(&route, region).await;
        request(moved).await
    }

    /// The route to `region`, made once for every request that asks.
    async fn move_to(&self, from: &Arc<Route>, region: &str) -> Arc<Route> {
        let _moving = self.moving.lock().await;
        let current = self.route();
        if !Arc::ptr_eq(&current, from) || current.region() == Some(region) {
            return current; // another request has moved it already
        }
        tracing::debug!(
            bucket = self.bucket,
            from = from.region().unwrap_or("none"),
            to = region,
            "the bucket is in another region: requests go there from now on"
        );
        let client = Client::from_conf(
            current
                .client
                .config()
                .to_builder()
                .region(Region::new(region.to_owned()))
                .build(),
        );
        let lean = match &self.direct {
            Some(direct) => Lean::new(direct, &client, &self.bucket, self.settings).await,
            None => None,
        };
        let moved = Arc::new(Route { client, lean });
        *self.route.write().unwrap_or_else(|e| e.into_inner()) = moved.clone();
        moved
    }

    fn payer(&self) -> Option<RequestPayer> {
        self.settings
            .requester_pays
            .then_some(RequestPayer::Requester)
    }

    /// One ListObjectsV2, its body read by [`ListReader`] as it arrives, not by the SDK.
    async fn list_page(
        &self,
        route: Arc<Route>,
        request: ListRequest<'_>,
    ) -> Result<Listing, ServiceError> {
        let take = TakeListBody::default();
        let mut builder = route
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(request.prefix)
            .set_start_after(request.start_after.map(str::to_owned))
            .set_continuation_token(request.token.map(str::to_owned))
            .set_delimiter(request.delimiter.map(str::to_owned))
            .set_request_payer(self.payer());
        // Archived objects' restore status: a restored one is downloaded, others skipped.
        // Directory buckets keep no archived objects and refuse to be asked.
        if !self.settings.directory {
            builder = builder.optional_object_attributes(OptionalObjectAttributes::RestoreStatus);
        }
        builder
            .customize()
            .interceptor(take.clone())
            .send()
            .await
            .map_err(ServiceError::from_sdk)?;
        let body = take
            .take()
            .ok_or_else(|| ServiceError::protocol("the listing response had no body".into()))?;
        let not_a_listing =
            || ServiceError::protocol("the listing response is not a ListBucketResult".into());
        let mut body = ByteStream::new(body);
        let mut reader = ListReader::new(request.wanted);
        while let Some(chunk) = body.try_next().await.map_err(ServiceError::body)? {
            reader.feed(&chunk).ok_or_else(not_a_listing)?;
        }
        reader.finish().ok_or_else(not_a_listing)
    }

    async fn get_object(
        &self,
        route: Arc<Route>,
        key: &str,
        range: Option<ByteRange>,
        if_match: Option<&str>,
    ) -> Result<GetResponse, ServiceError> {
        if let Some(lean) = &route.lean {
            return lean.get(key, range, if_match).await;
        }
        let response = route
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_range(range.map(ByteRange::header))
            .set_if_match(if_match.map(str::to_owned))
            .set_request_payer(self.payer())
            .send()
            .await
            .map_err(ServiceError::from_sdk)?;
        // A whole object's answer carries the checksum to verify; a range's does not.
        let checksum = (self.settings.verify && range.is_none())
            .then(|| {
                Expected::from_response(
                    response.checksum_crc64_nvme(),
                    response.checksum_crc32_c(),
                    response.checksum_crc32(),
                    response.checksum_type().map(|t| t.as_str()),
                    response.e_tag(),
                    response
                        .server_side_encryption()
                        .is_some_and(|s| s.as_str() != "AES256")
                        || response.sse_customer_algorithm().is_some(),
                    self.settings.md5_etags(),
                )
            })
            .flatten();
        let head = ObjectHead {
            etag: response.e_tag().map(str::to_owned),
            length: response.content_length().map(|n| n.max(0) as u64),
            checksum,
            last_modified: response.last_modified().and_then(|t| (*t).try_into().ok()),
        };
        let body = stream::try_unfold(response.body, |mut body| async move {
            match body.try_next().await {
                Ok(Some(chunk)) => Ok(Some((chunk, body))),
                Ok(None) => Ok(None),
                Err(e) => Err(ServiceError::body(e)),
            }
        });
        Ok(GetResponse {
            head,
            body: Box::pin(body),
        })
    }

    async fn head_object(
        &self,
        route: Arc<Route>,
        key: &str,
        if_match: Option<&str>,
    ) -> Result<ObjectHead, ServiceError> {
        let head = route
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .set_if_match(if_match.map(str::to_owned))
            .set_request_payer(self.payer())
            .send()
            .await
            .map_err(ServiceError::from_sdk)?;
        let checksum = self
            .settings
            .verify
            .then(|| {
                Expected::from_response(
                    head.checksum_crc64_nvme(),
                    head.checksum_crc32_c(),
                    head.checksum_crc32(),
                    head.checksum_type().map(|t| t.as_str()),
                    head.e_tag(),
                    head.server_side_encryption()
                        .is_some_and(|s| s.as_str() != "AES256")
                        || head.sse_customer_algorithm().is_some(),
                    self.settings.md5_etags(),
                )
            })
            .flatten();
        Ok(ObjectHead {
            etag: head.e_tag().map(str::to_owned),
            length: head.content_length().map(|n| n.max(0) as u64),
            checksum,
            last_modified: head.last_modified().and_then(|t| (*t).try_into().ok()),
        })
    }
}

impl Store for S3 {
    fn list<'a>(
        &'a self,
        request: ListRequest<'a>,
    ) -> BoxFuture<'a, Result<Listing, ServiceError>> {
        Box::pin(self.follow(move |route| self.list_page(route, request)))
    }

    fn get<'a>(
        &'a self,
        key: &'a str,
        range: Option<ByteRange>,
        if_match: Option<&'a str>,
    ) -> BoxFuture<'a, Result<GetResponse, ServiceError>> {
        Box::pin(self.follow(move |route| self.get_object(route, key, range, if_match)))
    }

    fn head<'a>(
        &'a self,
        key: &'a str,
        if_match: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ObjectHead, ServiceError>> {
        Box::pin(self.follow(move |route| self.head_object(route, key, if_match)))
    }

    /// AWS's own endpoints, for a general-purpose bucket: the endpoint s3fetch resolved for
    /// its GETs is one of AWS's (for a client of the caller's, it is not known).
    fn promises_order(&self) -> bool {
        !self.settings.directory
            && self.route().lean.as_ref().is_some_and(|lean| {
                let host = lean.base().split("://").nth(1).unwrap_or_default();
                let host = host.split(['/', ':']).next().unwrap_or_default();
                host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn")
            })
    }
}

/// The run's client: `client` with the SDK's own retries off (they are made in
/// [`crate::s3::retry`]) and its response checksum validation off (made in [`crate::checksum`]),
/// asking for checksums when verification is on. Configured once per run, not per request:
/// per-request overrides cost a config merge on every call.
fn configure(client: Client, settings: Settings) -> Client {
    let mut config = client
        .config()
        .to_builder()
        .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
        .response_checksum_validation(aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired);
    if settings.verify {
        config = config.interceptor(crate::checksum::AskForChecksums);
    }
    Client::from_conf(config.build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::client::ClientOptions;
    use aws_credential_types::provider::SharedCredentialsProvider;

    /// The base URL lean GETs go to, and the region the client signs for.
    fn route_of(s3: &S3) -> (String, String) {
        let route = s3.route();
        let base = route
            .lean
            .as_ref()
            .map(|l| l.base().to_owned())
            .unwrap_or_default();
        (base, route.region().unwrap_or_default().to_owned())
    }

    fn keys() -> SharedCredentialsProvider {
        SharedCredentialsProvider::new(aws_credential_types::Credentials::new(
            "a", "b", None, None, "test",
        ))
    }

    async fn s3(options: ClientOptions) -> S3 {
        let connection = options.connect(crate::tuning::Tuning::default()).await;
        S3::new(&connection, "bkt".into(), Settings::default()).await
    }

    #[tokio::test]
    async fn a_move_sends_aws_requests_to_the_regional_endpoint_signed_or_not() {
        for no_sign_request in [true, false] {
            let s3 = s3(ClientOptions {
                ignore_environment: true,
                no_sign_request,
                credentials: Some(keys()),
                ..ClientOptions::default()
            })
            .await;
            let (base, region) = route_of(&s3);
            assert_eq!(region, "us-east-1");
            assert!(
                base.contains("bkt.s3") && !base.contains("us-west-2"),
                "{base}"
            );
            let from = s3.route();
            s3.move_to(&from, "us-west-2").await;
            assert_eq!(
                route_of(&s3),
                (
                    "https://bkt.s3.us-west-2.amazonaws.com".into(),
                    "us-west-2".into()
                )
            );
            // Asked again by a request that was refused at the same time: no second move.
            let moved = s3.route();
            assert!(Arc::ptr_eq(&s3.move_to(&from, "us-west-2").await, &moved));
        }
    }

    #[tokio::test]
    async fn a_custom_endpoint_stays_and_only_the_signature_moves() {
        let s3 = s3(ClientOptions {
            ignore_environment: true,
            endpoint_url: Some("http://127.0.0.1:9".into()),
            credentials: Some(keys()),
            ..ClientOptions::default()
        })
        .await;
        let from = s3.route();
        s3.move_to(&from, "eu-central-1").await;
        assert_eq!(
            route_of(&s3),
            ("http://127.0.0.1:9/bkt".into(), "eu-central-1".into())
        );
    }

    #[tokio::test]
    async fn aws_promises_order_and_a_directory_bucket_goes_to_its_zones_region() {
        let aws = ClientOptions {
            ignore_environment: true,
            credentials: Some(keys()),
            ..ClientOptions::default()
        };
        assert!(s3(aws.clone()).await.promises_order());
        let custom = ClientOptions {
            endpoint_url: Some("http://127.0.0.1:9".into()),
            ..aws.clone()
        };
        assert!(
            !s3(custom).await.promises_order(),
            "a store of unknown habits"
        );
        let connection = aws.connect(crate::tuning::Tuning::default()).await;
        let directory = Settings {
            directory: true,
            ..Settings::default()
        };
        let express = S3::new(&connection, "data--usw2-az1--x-s3".into(), directory).await;
        assert_eq!(express.route().region(), Some("us-west-2"));
        assert!(!express.promises_order());
    }
}
