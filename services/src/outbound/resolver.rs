//! Name resolution that keeps only the addresses the policy allows. The connection is made to
//! exactly the addresses returned here, so a name cannot be checked against one answer and
//! connected to another (DNS rebinding).

use super::address::{AddressPolicy, RefusedAddress};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::SocketAddr;

pub struct GuardedResolver {
    pub policy: AddressPolicy,
}

/// A name whose every address is refused.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to {refused}")]
pub struct RefusedName {
    pub host: String,
    pub refused: RefusedAddress,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            // Port 0: the connector puts the URL's port on every address.
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (allowed, first_refusal) = keep_allowed(policy, resolved);
            if allowed.is_empty() {
                return Err(match first_refusal {
                    Some(refused) => Box::new(RefusedName { host, refused }) as _,
                    None => format!("{host} has no address").into(),
                });
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The allowed addresses, and the first refusal (to explain an empty answer). A name that
/// answers with a public and a private address is called on the public one only.
fn keep_allowed(policy: AddressPolicy, resolved: Vec<SocketAddr>) -> (Vec<SocketAddr>, Option<RefusedAddress>) {
    let mut first_refusal = None;
    let allowed = resolved
        .into_iter()
        .filter(|addr| match policy.check(addr.ip()) {
            Ok(()) => true,
            Err(refused) => {
                first_refusal.get_or_insert(refused);
                false
            }
        })
        .collect();
    (allowed, first_refusal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_addresses_are_dropped_from_an_answer() {
        let answer = vec!["10.0.0.1:0".parse().unwrap(), "8.8.8.8:0".parse().unwrap()];
        let (allowed, refusal) = keep_allowed(AddressPolicy::default(), answer);
        assert_eq!(allowed, vec!["8.8.8.8:0".parse::<SocketAddr>().unwrap()]);
        assert_eq!(refusal.unwrap().ip.to_string(), "10.0.0.1");
    }

    #[tokio::test]
    async fn localhost_resolves_to_nothing_without_the_loopback_flag() {
        let resolver = GuardedResolver { policy: AddressPolicy::default() };
        let name: Name = "localhost".parse().unwrap();
        let error = resolver.resolve(name).await.err().expect("refused");
        let refused = error.downcast_ref::<RefusedName>().expect("a refusal");
        assert!(refused.refused.ip.is_loopback(), "{refused}");
        let dev = GuardedResolver { policy: AddressPolicy { allow_loopback: true } };
        let addrs: Vec<_> = dev.resolve("localhost".parse().unwrap()).await.unwrap().collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty(), "{addrs:?}");
    }
}
