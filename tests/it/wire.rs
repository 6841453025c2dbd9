//! The API's wire form of a record (`http::api::ApiRecord`) is defined
//! apart from the stored form (`conversation::Record`, written by
//! `store/`). Today they agree field for field, which the webhook body
//! relies on (it serialises records as stored, and is documented with the
//! wire types). This test reads every record of the first-format fixture
//! store and says where they part, so a change to either is a decision.

use frontdesk::http::api::{ApiRecord, Wire};
use frontdesk::store::{SledStore, Store};

#[test]
fn every_fixture_record_has_the_same_wire_and_stored_json() {
    let from =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-v1/data");
    let tmp = tempfile::tempdir().expect("temp dir");
    let copy = tmp.path().join("data");
    std::fs::create_dir_all(copy.join("blobs")).expect("mkdir");
    for f in ["conf", "db", "frontdesk-store.json"] {
        std::fs::copy(from.join(f), copy.join(f)).expect("copy");
    }
    let store = SledStore::open(&copy).expect("the fixture opens");
    let mut n = 0;
    for id in store.conversations().expect("list") {
        for r in store.read(&id, 0).expect("read") {
            let stored = serde_json::to_value(&r).expect("stored JSON");
            let wire: ApiRecord = r.wire();
            assert_eq!(serde_json::to_value(&wire).expect("wire JSON"), stored);
            n += 1;
        }
    }
    assert!(n > 60, "{n} records");
}
