//! `/metrics`: the samples in the Prometheus text format, named and typed as ZooKeeper's
//! `PrometheusMetricsProvider` exposes them (its gauges as gauges, its counters as counters
//! without a `_total` suffix, its summaries with `quantile` labels — 0.5, 0.9, 0.99 for the
//! advanced ones, 0.5 for the basic — and a summary set's key as the label `key`), plus
//! Ensemble's own histograms. The `prometheus` crate's encoder writes the format.

use super::monitor::{Kind, Sample, Value};
use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType, Quantile,
    Summary,
};
use prometheus::{Encoder, TextEncoder};
use std::collections::BTreeMap;

/// The content type Prometheus expects for the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn label(name: &str, value: &str) -> LabelPair {
    let mut l = LabelPair::default();
    l.set_name(name.to_string());
    l.set_value(value.to_string());
    l
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

fn metric(s: &Sample) -> Option<(MetricType, Metric)> {
    let mut m = Metric::default();
    if let Some(k) = &s.key {
        m.set_label(vec![label("key", k)]);
    }
    let t = match (&s.kind, &s.value) {
        (Kind::Gauge, v) => {
            let mut g = Gauge::default();
            g.set_value(number(v)?);
            m.set_gauge(g);
            MetricType::GAUGE
        }
        (Kind::Counter, v) => {
            let mut c = Counter::default();
            c.set_value(number(v)?);
            m.set_counter(c);
            MetricType::COUNTER
        }
        (Kind::Summary { advanced }, Value::Summary(v)) => {
            let qs: &[f64] = if *advanced { &[0.5, 0.9, 0.99] } else { &[0.5] };
            let mut sum = Summary::default();
            sum.set_sample_count(v.count);
            sum.set_sample_sum(v.sum as f64);
            sum.set_quantile(
                qs.iter()
                    .map(|q| {
                        let mut x = Quantile::default();
                        x.set_quantile(*q);
                        x.set_value(v.quantile(*q) as f64);
                        x
                    })
                    .collect(),
            );
            m.set_summary(sum);
            MetricType::SUMMARY
        }
        (Kind::Histogram, Value::Histogram(v)) => {
            let mut h = Histogram::default();
            h.set_sample_count(v.count);
            h.set_sample_sum(v.sum);
            h.set_bucket(
                v.buckets
                    .iter()
                    .map(|(le, n)| {
                        let mut b = Bucket::default();
                        b.set_upper_bound(*le);
                        b.set_cumulative_count(*n);
                        b
                    })
                    .collect(),
            );
            m.set_histogram(h);
            MetricType::HISTOGRAM
        }
        // Text (version, state) is not a number Prometheus can hold.
        _ => return None,
    };
    Some((t, m))
}

/// The text exposition of `samples` (families sorted by name; a summary set's keys in one family).
pub fn encode(samples: &[Sample]) -> Result<Vec<u8>, prometheus::Error> {
    let mut families: BTreeMap<&str, MetricFamily> = BTreeMap::new();
    for s in samples {
        let Some((t, m)) = metric(s) else { continue };
        let f = families.entry(&s.name).or_insert_with(|| {
            let mut f = MetricFamily::default();
            f.set_name(s.name.clone());
            f.set_help(if s.help.is_empty() {
                s.name.clone()
            } else {
                s.help.to_string()
            });
            f.set_field_type(t);
            f
        });
        f.mut_metric().push(m);
    }
    let families: Vec<MetricFamily> = families.into_values().collect();
    let mut out = Vec::new();
    TextEncoder::new().encode(&families, &mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Summary as Measured;

    fn s(name: &str, kind: Kind, value: Value) -> Sample {
        Sample {
            name: name.into(),
            key: None,
            kind,
            value,
            help: "",
        }
    }

    #[test]
    fn zookeeper_shapes() {
        let lat = Measured::default();
        for v in [1, 2, 3, 4] {
            lat.observe(v);
        }
        let mut qp = s(
            "learner_handler_qp_size",
            Kind::Summary { advanced: false },
            Value::Summary(Measured::default().view()),
        );
        qp.key = Some("2".into());
        let text = encode(&[
            s("version", Kind::Text, Value::Text("x".into())),
            s("znode_count", Kind::Gauge, Value::Int(5)),
            s("packets_received", Kind::Gauge, Value::Int(7)),
            s("looking_count", Kind::Counter, Value::Int(1)),
            s(
                "readlatency",
                Kind::Summary { advanced: true },
                Value::Summary(lat.view()),
            ),
            qp,
        ])
        .unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(!text.contains("version"), "{text}");
        assert!(
            text.contains("# TYPE znode_count gauge\nznode_count 5\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE looking_count counter\nlooking_count 1\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE readlatency summary\n"), "{text}");
        assert!(
            text.contains("readlatency{quantile=\"0.99\"} 4\n"),
            "{text}"
        );
        assert!(text.contains("readlatency_count 4\n"), "{text}");
        assert!(text.contains("readlatency_sum 10\n"), "{text}");
        assert!(
            text.contains("learner_handler_qp_size{key=\"2\",quantile=\"0.5\"} 0\n"),
            "{text}"
        );
    }
}
