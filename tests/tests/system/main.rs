//! System tests: the whole service against a real Postgres, through real HTTP.
//! One binary, a module per feature (zero2prod's layout). `scripts/test` provides the
//! infrastructure; `DATABASE_URL` must name a superuser connection.

mod support;

mod audit;
mod auth;
mod bad_input;
mod bench;
mod composio_account_updates;
mod composio_errors;
mod composio_instances;
mod composio_oauth;
mod composio_resources;
mod composio_toolkits;
mod failures;
mod feed;
mod gateway;
mod gateway_composio;
mod gateway_gaia;
mod gateway_protocol;
mod gateway_record;
mod gateway_refresh;
mod gateway_replicas;
mod gateway_sse;
mod gateway_sse_upstream;
mod http_connections;
mod http_server;
mod idempotency;
mod input_limits;
mod klavis_errors;
mod klavis_instances;
mod klavis_oauth;
mod klavis_tools;
mod klavis_users;
mod nats_production;
mod oauth_outbound;
mod observability;
mod oversized_events;
mod rate_limits;
mod read_your_writes;
mod rebuild;
mod redirect_allowlist;
mod relay;
mod replay;
mod replicas;
mod republish;
mod secrets;
mod serve;
mod servers;
mod spec;
mod tenancy;
mod tenancy_matrix;
mod upcast;
mod verify;
