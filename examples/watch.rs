//! The events tour on its own: starts an in-process simulator (or connects to `URL USER
//! PASSWORD`), prints the network map and guest tools report from the object cache, then shows
//! live events while a VM is started and stopped.
//!
//! ```text
//! cargo run --example watch [-- URL USER PASSWORD]
//! ```

use xo_core::client::{Client, ClientConfig};
use xo_core::simulator::{SimConfig, Simulator};

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let _sim;
    let (url, user, password) = match args.as_slice() {
        [url, user, password] => (url.clone(), user.clone(), password.clone()),
        [] => {
            let sim = Simulator::start(SimConfig::default()).map_err(|e| e.to_string())?;
            let (u, p) = sim.credentials();
            let url = sim.url();
            _sim = sim;
            (url, u, p)
        }
        _ => return Err("usage: watch [URL USER PASSWORD]".into()),
    };
    println!("connecting to {url}");
    let client = Client::connect(
        ClientConfig::new(url.as_str()).with_plain_http(true),
        &user,
        password,
    )?;
    xo_examples::events_tour::run(&client, &mut std::io::stdout(), true)
}
