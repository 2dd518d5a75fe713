//! What the engine's integration tests share: client options that reach a test kit server
//! as a user's would (its endpoint, region and keys; nothing from the environment).

use s3fetch::aws_credential_types::provider::SharedCredentialsProvider;
use s3fetch::aws_credential_types::Credentials;
use s3fetch::ClientOptions;
use s3fetch_testkit::TestServer;

pub fn client_options(server: &TestServer) -> ClientOptions {
    let mut client = ClientOptions::default();
    client.endpoint_url = Some(server.endpoint());
    client.region = Some(server.region().to_owned());
    client.credentials = Some(SharedCredentialsProvider::new(Credentials::new(
        server.access_key(),
        server.secret_key(),
        None,
        None,
        "test",
    )));
    client.ignore_environment = true;
    client
}
