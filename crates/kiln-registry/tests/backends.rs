//! The shared storage suite (`kiln_registry::testsuite`) against the
//! filesystem storage and the object storage over `object_store`'s
//! in-memory bucket. The object storage over a Garage cluster runs the same
//! suite in `garage.rs`.

mod fs {
    use std::sync::Arc;

    kiln_registry::storage_suite!({
        let dir = tempfile::tempdir().unwrap();
        let s: Arc<dyn kiln_registry::Storage> =
            Arc::new(kiln_registry::FsStorage::open(dir.path()).unwrap());
        (s, dir)
    });
}

mod object_in_memory {
    use std::sync::Arc;

    // Parts of 256 KiB: the suite's uploads cross many part boundaries.
    kiln_registry::storage_suite!({
        let s: Arc<dyn kiln_registry::Storage> =
            Arc::new(kiln_registry::ObjectStorage::in_memory(256 * 1024).unwrap());
        (s, ())
    });
}
