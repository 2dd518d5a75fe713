//! The translations against errors built as the SDK and the transport build them.

use super::*;

#[test]
fn the_region_an_answer_names() {
    assert_eq!(
        named_region(Some("us-west-2"), None).as_deref(),
        Some("us-west-2")
    );
    let body =
        "<Error><Code>AuthorizationHeaderMalformed</Code><Region>eu-central-1</Region></Error>";
    assert_eq!(
        named_region(None, Some(body)).as_deref(),
        Some("eu-central-1")
    );
    // The header first; junk is no region.
    assert_eq!(
        named_region(Some("ap-south-1"), Some(body)).as_deref(),
        Some("ap-south-1")
    );
    assert_eq!(
        named_region(Some("us west"), Some("<Region></Region>")),
        None
    );
    assert_eq!(named_region(None, Some("<Error/>")), None);
    let message = "The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'us-west-2'";
    let code = Some("AuthorizationHeaderMalformed");
    assert_eq!(
        region_in_message(code, message).as_deref(),
        Some("us-west-2")
    );
    assert_eq!(
        region_in_message(Some("InvalidArgument"), message),
        None,
        "only that error's"
    );
}

mod from_the_sdk {
    use super::*;
    use aws_sdk_s3::error::ErrorMetadata;
    use aws_sdk_s3::operation::get_object::GetObjectError;
    use aws_sdk_s3::operation::head_object::HeadObjectError;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;

    use crate::error::Category;

    type Sdk<E> = SdkError<E, Response>;

    fn raw(status: u16, header: Option<(&str, &str)>, body: &str) -> Response {
        let mut raw = Response::new(
            StatusCode::try_from(status).unwrap(),
            SdkBody::from(body.to_owned()),
        );
        if let Some((name, value)) = header {
            raw.headers_mut().insert(name.to_owned(), value.to_owned());
        }
        raw
    }

    fn answer(
        status: u16,
        code: Option<&str>,
        message: &str,
        header: Option<(&str, &str)>,
    ) -> ServiceError {
        let mut meta = ErrorMetadata::builder().message(message);
        if let Some(code) = code {
            meta = meta.code(code);
        }
        let err: Sdk<GetObjectError> = SdkError::service_error(
            GetObjectError::generic(meta.build()),
            raw(status, header, ""),
        );
        ServiceError::from_sdk(err)
    }

    fn no_answer(source: ConnectorError) -> ServiceError {
        let err: Sdk<GetObjectError> = SdkError::dispatch_failure(source);
        ServiceError::from_sdk(err)
    }

    #[test]
    fn an_error_answer_keeps_its_code_status_and_the_region_it_names() {
        let denied = answer(403, Some("AccessDenied"), "Access Denied", None);
        assert_eq!(
            (denied.code(), denied.status(), denied.kind()),
            (Some("AccessDenied"), Some(403), ServiceErrorKind::Response)
        );
        assert_eq!(denied.category(), Category::Denied);
        assert_eq!(denied.to_string(), "AccessDenied: Access Denied");
        // A redirect without a body: the code named for its status, the region its header's.
        let moved = answer(301, None, "", Some((BUCKET_REGION, "eu-west-1")));
        assert_eq!(moved.code(), Some("PermanentRedirect"));
        assert_eq!(moved.bucket_region(), Some("eu-west-1"));
        assert_eq!(moved.move_to(Some("us-east-1")), Some("eu-west-1"));
        // Signed for the wrong region: the region S3's message expects.
        let malformed = answer(
            400,
            Some("AuthorizationHeaderMalformed"),
            "the region 'us-east-1' is wrong; expecting 'ap-south-1'",
            None,
        );
        assert_eq!(malformed.category(), Category::WrongRegion);
        assert_eq!(malformed.move_to(Some("us-east-1")), Some("ap-south-1"));
        assert!(answer(503, Some("SlowDown"), "Reduce your request rate", None).is_throttling());
    }

    #[test]
    fn a_head_answer_has_no_body_and_is_named_by_its_status() {
        let err: Sdk<HeadObjectError> = SdkError::service_error(
            HeadObjectError::generic(ErrorMetadata::builder().build()),
            raw(404, None, ""),
        );
        let missing = ServiceError::from_sdk(err);
        assert_eq!(missing.code(), Some("NotFound"));
        assert_eq!(missing.to_string(), "NotFound: HTTP 404");
    }

    #[test]
    fn an_answer_the_sdk_could_not_read_keeps_its_status() {
        let err: Sdk<GetObjectError> =
            SdkError::response_error(std::io::Error::other("not XML"), raw(500, None, "<html>"));
        let broken = ServiceError::from_sdk(err);
        assert_eq!(
            (broken.code(), broken.status()),
            (Some("InternalError"), Some(500))
        );
        assert!(broken.is_retryable());
    }

    #[test]
    fn a_request_without_an_answer_is_a_connection_tls_or_credentials_failure() {
        let refused = no_answer(ConnectorError::io(Box::new(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused",
        ))));
        assert_eq!(refused.kind(), ServiceErrorKind::Connection);
        assert!(refused.is_retryable());
        assert_eq!(refused.category(), Category::Connection);
        let untrusted = no_answer(ConnectorError::io(Box::new(std::io::Error::other(
            "invalid peer certificate: UnknownIssuer",
        ))));
        assert_eq!(untrusted.kind(), ServiceErrorKind::Tls);
        assert!(!untrusted.is_retryable());
        let credentials =
            |err: CredentialsError| no_answer(ConnectorError::other(Box::new(err), None)).kind();
        assert_eq!(
            credentials(CredentialsError::not_loaded("no keys")),
            ServiceErrorKind::NoCredentials
        );
        assert_eq!(
            credentials(CredentialsError::provider_error("SSO session expired")),
            ServiceErrorKind::Credentials
        );
        assert_eq!(
            credentials(CredentialsError::provider_timed_out(
                std::time::Duration::from_secs(5)
            )),
            ServiceErrorKind::Connection,
            "a provider that timed out may answer next time"
        );
        let err: Sdk<GetObjectError> = SdkError::timeout_error(std::io::Error::other("timed out"));
        assert_eq!(
            ServiceError::from_sdk(err).kind(),
            ServiceErrorKind::Connection
        );
        let err: Sdk<GetObjectError> =
            SdkError::construction_failure(std::io::Error::other("bad endpoint"));
        let unbuilt = ServiceError::from_sdk(err);
        assert_eq!(unbuilt.kind(), ServiceErrorKind::Request);
        assert!(!unbuilt.is_retryable());
    }

    #[test]
    fn the_lean_path_translates_as_the_sdk_does() {
        let lean = ServiceError::response(
            403,
            Some("AccessDenied".into()),
            Some("Access Denied".into()),
            None,
        );
        let sdk = answer(403, Some("AccessDenied"), "Access Denied", None);
        assert_eq!(
            (lean.code(), lean.status(), lean.kind(), lean.to_string()),
            (sdk.code(), sdk.status(), sdk.kind(), sdk.to_string())
        );
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset");
        assert_eq!(
            ServiceError::dispatch(&io).kind(),
            ServiceErrorKind::Connection
        );
        assert_eq!(
            ServiceError::credentials(&CredentialsError::not_loaded("none")).kind(),
            ServiceErrorKind::NoCredentials
        );
    }
}
