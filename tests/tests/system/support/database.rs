use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// A database of its own for one test, dropped when the test ends.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    admin_url: String,
}

fn admin_url() -> String {
    std::env::var("DATABASE_URL")
        .expect("DATABASE_URL must point at a Postgres superuser connection; run the tests through scripts/test")
}

/// `url` with its database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let prefix = base.rsplit_once('/').map_or(base, |(p, _)| p);
    match query {
        Some(q) => format!("{prefix}/{name}?{q}"),
        None => format!("{prefix}/{name}"),
    }
}

impl TestDatabase {
    pub async fn create() -> Self {
        let admin_url = admin_url();
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let admin = PgPoolOptions::new().max_connections(1).connect(&admin_url).await.expect("connect to DATABASE_URL");
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&admin).await.expect("create the test database");
        admin.close().await;
        let url = with_database(&admin_url, &name);
        Self { name, url, admin_url }
    }

    pub async fn pool(&self) -> PgPool {
        PgPoolOptions::new().max_connections(10).connect(&self.url).await.expect("connect to the test database")
    }
}

impl Drop for TestDatabase {
    /// Best effort, on a thread of its own (Drop cannot await): the cluster that
    /// `scripts/test` starts is thrown away anyway.
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropper = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            runtime.block_on(async {
                let admin = PgPoolOptions::new().max_connections(1).connect(&admin_url).await.ok()?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&admin).await.ok()
            })
        });
        let _ = dropper.join();
    }
}

#[test]
fn a_database_name_is_swapped_in_the_url() {
    assert_eq!(with_database("postgres://u@h:5/postgres", "t1"), "postgres://u@h:5/t1");
    assert_eq!(with_database("postgres://u@h:5/postgres?sslmode=disable", "t1"), "postgres://u@h:5/t1?sslmode=disable");
}
