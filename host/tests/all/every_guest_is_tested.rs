//! Every guest crate under `guests/` must be exercised by some test here:
//! adding a guest without a test fails this test. The guests come from
//! cargo metadata, so nothing lists them by hand.

use std::fs;

#[test]
fn every_guest_crate_is_loaded_by_a_host_test() {
    let tests_dir = xtask::project_root().join("host").join("tests").join("all");
    let mut sources = String::new();
    for entry in fs::read_dir(&tests_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "rs") && !path.ends_with(file!().rsplit('/').next().unwrap()) {
            sources.push_str(&fs::read_to_string(&path).unwrap());
        }
    }
    let guests = xtask::guests::discover().unwrap();
    assert!(guests.len() >= 5, "the guest workspace was found: {guests:?}");
    let untested: Vec<&str> = guests
        .iter()
        .map(|g| g.name.as_str())
        .filter(|name| {
            !sources.contains(&format!("guest(\"{name}\")")) && !sources.contains(&format!("component(\"{name}\")"))
        })
        .collect();
    assert!(
        untested.is_empty(),
        "guests with no host test calling support::guest(\"NAME\"): {untested:?}"
    );
}
