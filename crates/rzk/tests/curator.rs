//! Apache Curator 5.4.0 (Debian's libcurator-*-java, what Kafka, HBase and many services use)
//! against rzk: `tests/java/CuratorRecipes.java` runs CuratorCache (persistent recursive
//! watches through addWatch), InterProcessMutex, LeaderLatch, DistributedAtomicLong and a
//! transaction with two clients, first against Apache ZooKeeper 3.8.0 (a control: the program is
//! right) and then against rzk; both must print every step's "OK" and exit 0.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::{run_bounded, RefZk, RzkServer};

const JARS: &[&str] = &[
    "/usr/share/java/curator-recipes.jar",
    "/usr/share/java/curator-framework.jar",
    "/usr/share/java/curator-client.jar",
    "/usr/share/java/zookeeper.jar",
];
const STEPS: &[&str] = &[
    "OK create with parents",
    "OK CuratorCache",
    "OK InterProcessMutex",
    "OK LeaderLatch",
    "OK DistributedAtomicLong",
    "OK transaction",
];
/// javac, and one run of the program (a JVM start and six recipes).
const JAVA_TIMEOUT: Duration = Duration::from_secs(120);

fn missing() -> Option<String> {
    if let Some(jar) = JARS.iter().find(|jar| !Path::new(jar).exists()) {
        return Some(format!(
            "{jar} is missing (apt-get install libcurator-framework-java libcurator-recipes-java libcurator-client-java)"
        ));
    }
    if Command::new("javac").arg("-version").output().is_err() {
        return Some("javac is missing (a JDK)".to_string());
    }
    None
}

fn classpath(classes: &Path) -> String {
    std::iter::once(classes.display().to_string())
        .chain(JARS.iter().map(|jar| jar.to_string()))
        .collect::<Vec<_>>()
        .join(":")
}

fn compile(classes: &Path) {
    let source =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/java/CuratorRecipes.java");
    let mut javac = Command::new("javac");
    javac
        .arg("-cp")
        .arg(classpath(classes))
        .arg("-d")
        .arg(classes)
        .arg(&source);
    let output = run_bounded(javac, None, JAVA_TIMEOUT);
    assert!(
        output.status.success(),
        "javac {}: {}",
        source.display(),
        support::describe_output(&output)
    );
}

fn run_recipes(classes: &Path, connect: &str, server: &str) {
    let mut java = Command::new("java");
    java.arg("-cp")
        .arg(classpath(classes))
        .arg("CuratorRecipes")
        .arg(connect);
    let output = run_bounded(java, None, JAVA_TIMEOUT);
    let stdout = support::stdout_text(&output);
    assert!(
        output.status.success(),
        "Curator recipes against {server} failed: {}",
        support::describe_output(&output)
    );
    let printed: Vec<&str> = stdout.lines().collect();
    assert_eq!(printed, STEPS, "steps against {server}");
}

#[test]
fn curator_recipes_work_as_with_zookeeper() {
    if support::skip_without_reference("curator_recipes_work_as_with_zookeeper") {
        return;
    }
    if let Some(reason) = missing() {
        assert!(
            !support::in_ci(),
            "curator: {reason} (CI=true: .ci/run installs it)"
        );
        println!("skipped: curator: {reason}");
        return;
    }
    let classes = tempfile::tempdir().expect("a directory for the compiled classes");
    let (reference, rzk) = std::thread::scope(|scope| {
        let reference = scope.spawn(RefZk::start);
        let rzk = RzkServer::start(&[]);
        compile(classes.path());
        (reference.join().expect("reference ZooKeeper started"), rzk)
    });
    run_recipes(
        classes.path(),
        &reference.connect_string(),
        "ZooKeeper 3.8.0",
    );
    run_recipes(classes.path(), &rzk.connect_string(), "rzk");
}
