//! A private PostgreSQL cluster (initdb + pg_ctl) on a free loopback port, for tests that
//! restart the server; the shared one on 5432 must stay up for the other tests.

use std::path::PathBuf;
use std::process::Command;

/// A running throwaway cluster, stopped and deleted on drop.
pub struct Cluster {
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
    /// initdb refuses to run as root: then the cluster belongs to `postgres`.
    as_postgres: bool,
}

impl Cluster {
    /// initdb and start (trust auth, user `postgres`).
    pub fn start() -> Cluster {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL server binaries in /usr/lib/postgresql")
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|p| p.join("initdb").exists())
            .max()
            .expect("initdb in /usr/lib/postgresql/*/bin");
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        let dir =
            std::env::temp_dir().join(format!("sitewatch-pg-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let cluster = Cluster {
            port: crate::free_port(),
            dir,
            bin,
            as_postgres,
        };
        if as_postgres {
            assert!(Command::new("chown")
                .arg("postgres")
                .arg(&cluster.dir)
                .status()
                .unwrap()
                .success());
        }
        let data = cluster.dir.join("data");
        cluster.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "-A",
                "trust",
            ],
        );
        cluster.pg_ctl(&["start"]);
        cluster
    }

    /// Writes `name` into the data directory, owned by the server and readable by it alone
    /// (as PostgreSQL wants a private key).
    pub fn write_private(&self, name: &str, contents: &str) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.join("data").join(name);
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        if self.as_postgres {
            assert!(Command::new("chown")
                .arg("postgres")
                .arg(&path)
                .status()
                .unwrap()
                .success());
        }
    }

    /// Adds `settings` to postgresql.conf and replaces pg_hba.conf by `hba`; both take
    /// effect at the next [`restart`](Self::restart).
    pub fn configure(&self, settings: &str, hba: &str) {
        use std::io::Write;
        let data = self.dir.join("data");
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap();
        writeln!(conf, "{settings}").unwrap();
        std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
    }

    /// `pg_ctl restart -m fast`: every connection is cut, the server comes back.
    pub fn restart(&self) {
        self.pg_ctl(&["restart", "-m", "fast"]);
    }

    /// libpq key=value parameters for database `db`.
    pub fn params(&self, db: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={db}",
            self.port
        )
    }

    /// `postgres://` URL of database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    fn pg_ctl(&self, action: &[&str]) {
        let data = self.dir.join("data");
        let log = self.dir.join("server.log");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.display()
        );
        let mut args = vec![
            "-D",
            data.to_str().unwrap(),
            "-l",
            log.to_str().unwrap(),
            "-w",
            "-o",
            &opts,
        ];
        args.extend_from_slice(action);
        self.run("pg_ctl", &args);
    }

    /// `tool` from the server's bin directory, run as the cluster's owner.
    fn command(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        cmd.current_dir(&self.dir);
        cmd
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let out = self.command(tool).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let args = [
            "-D",
            data.to_str().unwrap_or_default(),
            "-m",
            "immediate",
            "-w",
            "stop",
        ];
        let _ = self.command("pg_ctl").args(args).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
