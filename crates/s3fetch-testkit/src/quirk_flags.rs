//! The `serve` flags of the per-bucket quirks (buckets in other regions, requester pays,
//! stores that list differently, S3 Express directory buckets), kept out of `main.rs`;
//! each maps onto the `ServerOptions` field of the same name.

use s3fetch_testkit::{is_directory_bucket_name, ServerOptions};

/// Per-bucket behaviours of real S3 and S3-compatible stores (every flag repeatable).
#[derive(Debug, clap::Args)]
pub(crate) struct QuirkArgs {
    /// The bucket lives in REGION: a request signed for another region gets 301
    /// PermanentRedirect (signed for us-east-1) or 400 AuthorizationHeaderMalformed (any
    /// other), both with `x-amz-bucket-region: REGION` (HEAD: no body); HeadBucket,
    /// ListBuckets and GetBucketLocation report REGION. Unsigned requests are served (one
    /// endpoint can't tell which region they were meant for).
    #[arg(long = "bucket-region", value_name = "BUCKET=REGION", value_parser = parse_bucket_region)]
    bucket_regions: Vec<(String, String)>,
    /// Requester-pays bucket (created if missing): a request without `x-amz-request-payer:
    /// requester`, and any anonymous request, gets 403 AccessDenied.
    #[arg(long = "requester-pays", value_name = "BUCKET", value_parser = parse_bucket)]
    requester_pays: Vec<String>,
    /// List the bucket in a fixed non-lexicographic order (by a hash of each key / common
    /// prefix), like stores that don't sort; continuation tokens are positions in it.
    #[arg(long = "unordered", value_name = "BUCKET", value_parser = parse_bucket)]
    unordered: Vec<String>,
    /// ListObjectsV2 of the bucket ignores start-after (lists from the start of the prefix).
    #[arg(long = "ignore-start-after", value_name = "BUCKET", value_parser = parse_bucket)]
    ignore_start_after: Vec<String>,
    /// ListObjectsV2 of the bucket answers 501 NotImplemented to a start-after.
    #[arg(long = "refuse-start-after", value_name = "BUCKET", value_parser = parse_bucket)]
    refuse_start_after: Vec<String>,
    /// An S3 Express One Zone directory bucket (created if missing), named like
    /// `data--usw2-az1--x-s3`: AWS SDKs reach it through CreateSession and `s3express`
    /// signatures; ListObjectsV2 refuses start-after, x-amz-optional-object-attributes, a
    /// prefix not ending in `/` and a delimiter other than `/` (400 InvalidArgument) and
    /// lists in its own order; ETags are not MD5s.
    #[arg(long = "directory-bucket", value_name = "NAME--ZONE--x-s3", value_parser = parse_directory_bucket)]
    directory_buckets: Vec<String>,
    /// A folder of a directory bucket holding an in-progress multipart upload and no
    /// object: listed as a common prefix, as S3 Express does.
    #[arg(long = "pending-upload", value_name = "BUCKET/FOLDER/", value_parser = parse_pending_upload)]
    pending_uploads: Vec<(String, String)>,
}

impl QuirkArgs {
    /// Sets the quirk fields of `options`.
    pub(crate) fn apply(self, options: &mut ServerOptions) {
        options.bucket_regions = self.bucket_regions;
        options.requester_pays = self.requester_pays;
        options.unordered = self.unordered;
        options.ignore_start_after = self.ignore_start_after;
        options.refuse_start_after = self.refuse_start_after;
        options.directory_buckets = self.directory_buckets;
        options.directory_pending_uploads = self.pending_uploads;
    }
}

fn parse_bucket(s: &str) -> Result<String, String> {
    if s3s::path::check_bucket_name(s) {
        Ok(s.to_owned())
    } else {
        Err(format!("{s:?} is not a valid bucket name"))
    }
}

fn parse_bucket_region(s: &str) -> Result<(String, String), String> {
    let (bucket, region) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected BUCKET=REGION, e.g. data=eu-west-1"))?;
    let valid_region = !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid_region {
        return Err(format!("{region:?} is not a region name (like eu-west-1)"));
    }
    Ok((parse_bucket(bucket)?, region.to_owned()))
}

fn parse_directory_bucket(s: &str) -> Result<String, String> {
    if is_directory_bucket_name(s) {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "{s:?} is not a directory bucket name: S3 Express One Zone names look like \
             BASE--ZONE-ID--x-s3, e.g. data--usw2-az1--x-s3"
        ))
    }
}

fn parse_pending_upload(s: &str) -> Result<(String, String), String> {
    let (bucket, folder) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?}: expected BUCKET/FOLDER/"))?;
    if folder.is_empty() || !folder.ends_with('/') {
        return Err(format!("{s:?}: the folder must end in '/'"));
    }
    Ok((parse_directory_bucket(bucket)?, folder.to_owned()))
}
