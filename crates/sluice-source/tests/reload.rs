//! The reload loop with a source in memory: a burst of changes is one compile, a source that
//! has not synced is not compiled, a refused configuration leaves the last good one serving,
//! and readiness follows (synced, served, not draining).
use sluice_compile::{AnalyzeOptions, GatewayIdentity};
use sluice_config::{Loaded, Loader};
use sluice_source::{Built, Pipeline, Reloader, Source, SourceError};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

const GOOD: &str = "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\n\
    spec: {selector: {istio: ingressgateway}, servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}]}\n";

#[derive(Default)]
struct Memory {
    text: Mutex<String>,
    synced: AtomicBool,
    loads: AtomicUsize,
}

impl Source for Memory {
    fn watch(&self, _changed: mpsc::Sender<&'static str>) -> Result<(), SourceError> {
        Ok(())
    }
    fn load(&self) -> Result<Loaded, SourceError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        let mut l = Loader::new();
        l.add_text("memory.yaml".into(), &self.text.lock().unwrap());
        Ok(l.finish())
    }
    fn synced(&self) -> bool {
        self.synced.load(Ordering::SeqCst)
    }
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(150)).await;
}

#[tokio::test]
async fn bursts_compile_once_and_refusals_keep_the_last_good() {
    let source = Arc::new(Memory::default());
    *source.text.lock().unwrap() = GOOD.into();
    let reloader = Reloader::new(
        source.clone(),
        Pipeline::new(AnalyzeOptions::default(), GatewayIdentity::default()),
        Duration::from_millis(50),
    );
    let ready = reloader.readiness();
    let applied: Arc<Mutex<Vec<Built>>> = Arc::default();
    let sink = applied.clone();
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(reloader.run(rx, move |b| {
        sink.lock().unwrap().push(b.clone());
        Ok(())
    }));

    // Not synced: changes are noted, nothing is compiled, not ready.
    let _ = tx.try_send("change");
    settle().await;
    assert_eq!(source.loads.load(Ordering::SeqCst), 0);
    assert!(!ready.is_ready());

    // Synced: a burst of changes is one compile.
    source.synced.store(true, Ordering::SeqCst);
    for _ in 0..20 {
        let _ = tx.try_send("change");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    settle().await;
    assert_eq!(source.loads.load(Ordering::SeqCst), 1);
    assert_eq!(applied.lock().unwrap().len(), 1);
    assert!(ready.is_ready());

    // A configuration with an error is refused: nothing applied, still ready on the last one.
    *source.text.lock().unwrap() = GOOD.replace("protocol: HTTP", "protocol: HTPP");
    let _ = tx.try_send("change");
    settle().await;
    assert_eq!(source.loads.load(Ordering::SeqCst), 2);
    assert_eq!(applied.lock().unwrap().len(), 1);
    assert!(ready.is_ready());

    ready.set_draining();
    assert!(!ready.is_ready());
}
