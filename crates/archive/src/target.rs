//! Where an archive lives: a prefix in an `object_store` store — a local directory or an
//! S3-compatible bucket — and the few operations the archive needs of it: create-only puts,
//! reads and listings of the `segments/` and `epochs/` folders.

use std::sync::Arc;

use futures_util::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::error::ArchiveError;
use crate::segment::{SEGMENT_FOLDER, SegmentName};

/// The folder of epoch claims: one empty object per writer epoch ever started.
pub const EPOCH_FOLDER: &str = "epochs";

/// An archive: an object store and the prefix under which its objects live. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ArchiveTarget {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    description: String,
    /// The directory of a local target: object_store's `LocalFileSystem` does not fsync, so the
    /// archive does, before it counts an object as written.
    local_root: Option<std::path::PathBuf>,
    /// Folders of a local target whose entry in the root is known durable: the root is fsynced
    /// once per folder, not for every object (the archiver seals many segments a second).
    durable_folders: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl ArchiveTarget {
    /// A directory on this machine (created if missing), e.g. a mounted backup volume.
    pub fn local_directory(dir: &std::path::Path) -> Result<ArchiveTarget, ArchiveError> {
        std::fs::create_dir_all(dir).map_err(|source| ArchiveError::LocalIo {
            action: "creating",
            path: dir.display().to_string(),
            source,
        })?;
        let store =
            object_store::local::LocalFileSystem::new_with_prefix(dir).map_err(|source| {
                ArchiveError::Store {
                    target: dir.display().to_string(),
                    action: "opening",
                    object: dir.display().to_string(),
                    source: Box::new(source),
                }
            })?;
        Ok(ArchiveTarget {
            store: Arc::new(store),
            prefix: ObjectPath::default(),
            description: format!("directory {}", dir.display()),
            local_root: Some(dir.to_path_buf()),
            durable_folders: Arc::default(),
        })
    }

    /// An S3-compatible bucket configured from the environment — `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_DEFAULT_REGION` (or `AWS_REGION`), `AWS_ENDPOINT` for a
    /// non-AWS service and `AWS_ALLOW_HTTP=true` for a plain-HTTP one — so credentials never appear
    /// on a command line. Objects go under `prefix` (may be empty). Create-only puts use
    /// `If-None-Match: *`, which S3 and most compatible services honour.
    pub fn s3_from_env(bucket: &str, prefix: &str) -> Result<ArchiveTarget, ArchiveError> {
        // object_store's HTTPS client is rustls without a bundled provider (see the root
        // Cargo.toml): use ring, which the rest of the process uses too. An error only means a
        // provider was installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        ArchiveTarget::s3(
            object_store::aws::AmazonS3Builder::from_env(),
            bucket,
            prefix,
        )
    }

    /// An S3-compatible bucket configured by `settings` alone, named as the environment's
    /// variables are (`AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT`, `AWS_ALLOW_HTTP`, ... in any case): for
    /// a tool that holds a configuration of its own (a benchmark's loopback server), not for the
    /// service, whose credentials come from the environment only ([`ArchiveTarget::s3_from_env`]).
    pub fn s3_with_settings(
        bucket: &str,
        prefix: &str,
        settings: &[(&str, &str)],
    ) -> Result<ArchiveTarget, ArchiveError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = object_store::aws::AmazonS3Builder::new();
        for (key, value) in settings {
            let parsed = key
                .to_ascii_lowercase()
                .parse::<object_store::aws::AmazonS3ConfigKey>()
                .map_err(|_| ArchiveError::Config(format!("{key} is not an S3 setting")))?;
            builder = builder.with_config(parsed, *value);
        }
        ArchiveTarget::s3(builder, bucket, prefix)
    }

    fn s3(
        builder: object_store::aws::AmazonS3Builder,
        bucket: &str,
        prefix: &str,
    ) -> Result<ArchiveTarget, ArchiveError> {
        let store = builder
            .with_bucket_name(bucket)
            .build()
            .map_err(|error| ArchiveError::Config(format!("S3 bucket {bucket}: {error}")))?;
        Ok(ArchiveTarget::from_store(
            Arc::new(store),
            prefix,
            format!("s3 bucket {bucket}"),
        ))
    }

    /// Any object store, under `prefix`.
    pub fn from_store(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        description: impl Into<String>,
    ) -> ArchiveTarget {
        ArchiveTarget {
            store,
            prefix: ObjectPath::from(prefix),
            description: description.into(),
            local_root: None,
            durable_folders: Arc::default(),
        }
    }

    /// What the target is, for messages.
    pub fn description(&self) -> &str {
        &self.description
    }

    fn path(&self, folder: &str, file_name: &str) -> ObjectPath {
        self.prefix.clone().join(folder).join(file_name)
    }

    fn store_error(
        &self,
        action: &'static str,
        object: String,
    ) -> impl FnOnce(object_store::Error) -> ArchiveError + '_ {
        move |source| ArchiveError::Store {
            target: self.description.clone(),
            action,
            object,
            source: Box::new(source),
        }
    }

    /// Writes a new object; refuses with [`ArchiveError::AlreadyExists`] if the name is taken, so
    /// no writer ever replaces another's object.
    pub(crate) async fn put_new(
        &self,
        folder: &str,
        file_name: &str,
        bytes: Vec<u8>,
    ) -> Result<(), ArchiveError> {
        let path = self.path(folder, file_name);
        let options = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self
            .store
            .put_opts(&path, PutPayload::from(bytes), options)
            .await
        {
            Ok(_) => self.sync_local(folder, file_name),
            Err(object_store::Error::AlreadyExists { .. }) => Err(ArchiveError::AlreadyExists {
                object: format!("{folder}/{file_name}"),
            }),
            Err(source) => {
                Err(self.store_error("writing", format!("{folder}/{file_name}"))(source))
            }
        }
    }

    /// On a local target, fsyncs a new object and its folder, so an object counted as archived
    /// survives a power cut of the archive's machine.
    fn sync_local(&self, folder: &str, file_name: &str) -> Result<(), ArchiveError> {
        let Some(root) = &self.local_root else {
            return Ok(());
        };
        let folder_path = root.join(folder);
        let sync = |path: &std::path::Path| {
            std::fs::File::open(path)
                .and_then(|file| file.sync_all())
                .map_err(|source| ArchiveError::LocalIo {
                    action: "fsync of",
                    path: path.display().to_string(),
                    source,
                })
        };
        sync(&folder_path.join(file_name))?;
        sync(&folder_path)?;
        let mut durable = self
            .durable_folders
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !durable.contains(folder) {
            sync(root)?;
            durable.insert(folder.to_owned());
        }
        Ok(())
    }

    pub(crate) async fn get(&self, folder: &str, file_name: &str) -> Result<Vec<u8>, ArchiveError> {
        let path = self.path(folder, file_name);
        let object = format!("{folder}/{file_name}");
        let result = self
            .store
            .get(&path)
            .await
            .map_err(self.store_error("reading", object.clone()))?;
        let bytes = result
            .bytes()
            .await
            .map_err(self.store_error("reading", object))?;
        Ok(bytes.to_vec())
    }

    /// The file names in `folder`, sorted.
    pub(crate) async fn list(&self, folder: &str) -> Result<Vec<String>, ArchiveError> {
        let prefix = self.prefix.clone().join(folder);
        let metas: Vec<_> = self
            .store
            .list(Some(&prefix))
            .try_collect()
            .await
            .map_err(self.store_error("listing", folder.to_owned()))?;
        let mut names: Vec<String> = metas
            .into_iter()
            .map(|meta| {
                meta.location
                    .prefix_match(&prefix)
                    .map(|parts| {
                        parts
                            .map(|part| part.as_ref().to_owned())
                            .collect::<Vec<_>>()
                            .join("/")
                    })
                    .unwrap_or_else(|| meta.location.to_string())
            })
            .collect();
        names.sort();
        Ok(names)
    }

    /// Every segment in the archive, in sequence order. An object in `segments/` whose name is
    /// not a segment name is an error naming it: nothing is silently skipped.
    pub async fn segments(&self) -> Result<Vec<SegmentName>, ArchiveError> {
        let mut segments = Vec::new();
        for file_name in self.list(SEGMENT_FOLDER).await? {
            match SegmentName::parse(&file_name) {
                Some(name) => segments.push(name),
                None => {
                    return Err(ArchiveError::UnknownObject {
                        object: format!("{SEGMENT_FOLDER}/{file_name}"),
                    });
                }
            }
        }
        segments.sort();
        Ok(segments)
    }

    /// The newest epoch any writer has claimed (or sealed a segment with); `None` for a new archive.
    pub async fn newest_epoch(&self) -> Result<Option<u64>, ArchiveError> {
        let claimed = self.newest_claimed_epoch().await?;
        let sealed = self.segments().await?.iter().map(|name| name.epoch).max();
        Ok(claimed.max(sealed))
    }

    /// The newest epoch in `epochs/`: every writer claims its epoch there before it seals.
    async fn newest_claimed_epoch(&self) -> Result<Option<u64>, ArchiveError> {
        let mut newest = None;
        for file_name in self.list(EPOCH_FOLDER).await? {
            let epoch = parse_epoch(&file_name).ok_or_else(|| ArchiveError::UnknownObject {
                object: format!("{EPOCH_FOLDER}/{file_name}"),
            })?;
            newest = newest.max(Some(epoch));
        }
        Ok(newest)
    }

    /// Records that a writer with `epoch` has started (idempotent for one epoch).
    pub(crate) async fn claim_epoch(&self, epoch: u64) -> Result<(), ArchiveError> {
        match self
            .put_new(EPOCH_FOLDER, &epoch_file_name(epoch), Vec::new())
            .await
        {
            Ok(()) | Err(ArchiveError::AlreadyExists { .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }

    /// Claims an epoch newer than `after` and than every epoch the archive holds (claimed in
    /// `epochs/` or sealed in `segments/`) and returns it: what a promotion takes. The claim is create-only, so two
    /// promotions racing each other never share an epoch: the loser of a name moves on to the next.
    pub async fn claim_next_epoch(&self, after: u64) -> Result<u64, ArchiveError> {
        // Each lost race means another writer claimed the name in between; a handful of rounds
        // settles any realistic contention, and a store refusing every create is reported.
        const ROUNDS: u32 = 16;
        let mut last_taken = None;
        for _ in 0..ROUNDS {
            let newest = self.newest_epoch().await?.unwrap_or(0).max(after);
            let next = newest.checked_add(1).ok_or(ArchiveError::EpochsExhausted)?;
            match self
                .put_new(EPOCH_FOLDER, &epoch_file_name(next), Vec::new())
                .await
            {
                Ok(()) => return Ok(next),
                Err(ArchiveError::AlreadyExists { object }) => last_taken = Some(object),
                Err(error) => return Err(error),
            }
        }
        Err(ArchiveError::AlreadyExists {
            object: last_taken.unwrap_or_else(|| EPOCH_FOLDER.to_owned()),
        })
    }

    /// Fails with [`ArchiveError::Fenced`] if a newer epoch than `epoch` has been claimed or, with
    /// `and_segments`, has sealed a segment (an archive whose `epochs/` was lost). Without it, one
    /// small listing: what the writer checks before every seal, however many segments exist.
    pub(crate) async fn check_not_fenced(
        &self,
        epoch: u64,
        and_segments: bool,
    ) -> Result<(), ArchiveError> {
        let newest = if and_segments {
            self.newest_epoch().await?
        } else {
            self.newest_claimed_epoch().await?
        };
        match newest {
            Some(newer) if newer > epoch => Err(ArchiveError::Fenced { epoch, newer }),
            _ => Ok(()),
        }
    }
}

fn epoch_file_name(epoch: u64) -> String {
    format!("e{epoch:020}")
}

fn parse_epoch(file_name: &str) -> Option<u64> {
    let digits = file_name.strip_prefix('e')?;
    let epoch = digits.parse().ok()?;
    (epoch_file_name(epoch) == file_name).then_some(epoch)
}
