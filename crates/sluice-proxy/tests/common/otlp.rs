//! A loopback OTLP/HTTP receiver for tests: decodes each export request with the protocol's
//! own types and keeps what it got.
#![allow(dead_code)]
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A span with its resource's attributes.
pub type Received = (Vec<KeyValue>, Span);

/// What the receiver got: each export request's path and content type, and every span.
#[derive(Clone, Default)]
pub struct Collector {
    pub requests: Arc<Mutex<Vec<(String, String)>>>,
    pub spans: Arc<Mutex<Vec<Received>>>,
}

impl Collector {
    /// An OTLP/HTTP receiver on a free loopback port.
    pub async fn start() -> (Collector, std::net::SocketAddr) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let collector = Collector::default();
        let c = collector.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let c = c.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let c = c.clone();
                        async move {
                            let path = req.uri().path().to_string();
                            let content_type = req
                                .headers()
                                .get("content-type")
                                .map(|v| v.to_str().unwrap().to_string())
                                .unwrap_or_default();
                            let body = req.into_body().collect().await?.to_bytes();
                            let export = ExportTraceServiceRequest::decode(body).unwrap();
                            c.requests.lock().unwrap().push((path, content_type));
                            for rs in export.resource_spans {
                                let resource = rs.resource.unwrap_or_default().attributes;
                                for ss in rs.scope_spans {
                                    for span in ss.spans {
                                        c.spans.lock().unwrap().push((resource.clone(), span));
                                    }
                                }
                            }
                            let reply = ExportTraceServiceResponse::default().encode_to_vec();
                            let resp = hyper::Response::builder()
                                .header("content-type", "application/x-protobuf")
                                .body(Full::new(Bytes::from(reply)))
                                .unwrap();
                            Ok::<_, hyper::Error>(resp)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        (collector, addr)
    }

    /// The span of `trace_id` (hex), once it has arrived (bounded wait).
    pub fn span_of(&self, trace_id: &str) -> Received {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(found) = self
                .spans
                .lock()
                .unwrap()
                .iter()
                .find(|(_, s)| hex(&s.trace_id) == trace_id)
            {
                return found.clone();
            }
            assert!(Instant::now() < deadline, "no span of trace {trace_id}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn traces(&self) -> Vec<String> {
        let spans = self.spans.lock().unwrap();
        spans.iter().map(|(_, s)| hex(&s.trace_id)).collect()
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An attribute's value as text (strings as they are, integers in decimal).
pub fn attr(attrs: &[KeyValue], key: &str) -> Option<String> {
    let kv = attrs.iter().find(|kv| kv.key == key)?;
    match kv.value.as_ref()?.value.as_ref()? {
        Value::StringValue(s) => Some(s.clone()),
        Value::IntValue(i) => Some(i.to_string()),
        other => Some(format!("{other:?}")),
    }
}
