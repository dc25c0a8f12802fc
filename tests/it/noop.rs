//! A run over periods whose deliveries have not changed is told so by each period's
//! ledger and one listing of its manifest's folder: it lists neither the source's data
//! nor the staged copy. `--verify` (and, once a day, `verify_every`) compares in full.

use crate::delta_s3::PAYERS;
use crate::fault_proxy::{FaultProxy, Faults};
use crate::fleet::{Fleet, PERIODS};
use crate::s3_support::{S3World, curflow_s3, source_period, staged_folder, staged_period};
use crate::support::{output_text, run};

/// Three payers × two periods, synchronized; then a run through a counting proxy sends
/// exactly two requests per payer-period to the source and staging buckets: a GET of the
/// ledger and a listing of the manifest's folder.
#[tokio::test(flavor = "multi_thread")]
async fn a_no_op_run_reads_each_ledger_and_lists_each_manifest_folder_once() {
    let mut fleet = Fleet::new(3).await;
    fleet.production_lease();
    fleet.deliver_all().await;
    let (staging, sources) = (&fleet.staging, &fleet.sources);
    let args = fleet.args();
    let out = run(curflow_s3(fleet.dir.path(), &fleet.ep, &args));
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));

    let proxy = FaultProxy::start(&fleet.ep, Faults::default());
    let out = run(curflow_s3(fleet.dir.path(), &proxy.endpoint, &args));
    let said = output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert_eq!(said.matches("Already synchronized").count(), 6, "{said}");
    let requests = proxy.requests();
    let to = |bucket: &str| -> Vec<&String> {
        requests
            .iter()
            .filter(|r| {
                r.contains(&format!("/{bucket}/"))
                    || r.contains(&format!("/{bucket}?"))
                    || r.contains(&format!("host:{bucket}."))
            })
            .collect()
    };
    let mut counted = 0;
    for (payer, source) in PAYERS.iter().zip(sources) {
        for (year, month) in PERIODS {
            let period = format!("{year}-{month:02}");
            let ledger: Vec<_> = to(staging)
                .into_iter()
                .filter(|r| r.contains(&format!("/_curflow/ledger/payer-{payer}/{period}.json")))
                .collect();
            assert!(
                ledger.len() == 1 && ledger[0].starts_with("GET "),
                "payer {payer} {period}: the ledger once: {ledger:?}"
            );
            let manifest: Vec<_> = to(source)
                .into_iter()
                .filter(|r| {
                    r.contains("list-type=2") && r.contains("metadata") && r.contains(&period)
                })
                .collect();
            assert_eq!(
                manifest.len(),
                1,
                "payer {payer} {period}: one listing: {manifest:?}"
            );
            counted += 2;
        }
    }
    let sent: Vec<&String> = to(staging)
        .into_iter()
        .chain(sources.iter().flat_map(|s| to(s)))
        .collect();
    assert_eq!(
        sent.len(),
        counted,
        "2 requests per payer-period, nothing else: {sent:#?}"
    );
}

/// A staged file deleted behind curflow's back: the default run trusts the unchanged
/// manifest and does not look (documented: `verify_every`); `--verify` compares in full,
/// copies the file again and says so, and the runs after it have nothing to do.
#[tokio::test(flavor = "multi_thread")]
async fn verify_repairs_a_staged_file_lost_behind_curflows_back() {
    let w = S3World::new(PAYERS[0], "periods = 1", "").await;
    w.generate((2025, 7), 1, 500).await;
    let args = w.july("run");
    let out = w.run(&args);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    let source = source_period(&w.c, &w.source, "2025-07").await;
    let folder = staged_folder(&w.c, &w.staging, PAYERS[0], "2025-07").await;
    let lost = source.keys().next().unwrap().clone();
    w.c.delete_object()
        .bucket(&w.staging)
        .key(format!("staging/{folder}/{lost}"))
        .send()
        .await
        .unwrap();

    let out = w.run(&args);
    let said = output_text(&out);
    assert!(
        out.status.success() && said.contains("Already synchronized"),
        "{said}"
    );
    let staged = staged_period(&w.c, &w.staging, PAYERS[0], (2025, 7)).await;
    assert_eq!(
        staged.len(),
        source.len() - 1,
        "the default run did not look"
    );

    let mut verify = args.clone();
    verify.push("--verify");
    let out = w.run(&verify);
    let said = output_text(&out);
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(said.contains("synchronized: 1 file copied"), "{said}");
    assert_eq!(
        staged_period(&w.c, &w.staging, PAYERS[0], (2025, 7)).await,
        source
    );
    for run_args in [&verify, &args] {
        let out = w.run(run_args);
        let said = output_text(&out);
        assert!(
            out.status.success() && said.contains("Already synchronized"),
            "{said}"
        );
    }
}
