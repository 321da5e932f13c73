/**
 * The command line's file output. A file is written to a temporary name in its folder and renamed,
 * so no reader ever sees half a file, and nothing is left behind:
 *
 * - Temporary files are named `.backpass-<pid>-<k>.tmp`, short whatever the file's name (a name
 *   of 252 characters is legal; it was its temporary name that the file system refused). If
 *   writing or renaming fails, the
 *   temporary file is removed; on SIGINT or SIGTERM while writing, every temporary file of this
 *   run is removed (synchronously) before the signal is raised again.
 * - A run killed outright (SIGKILL, power loss) cannot clean up, so the first write into a folder
 *   removes the `.backpass-<pid>-<k>.tmp` files there whose process is gone (`kill(pid, 0)` fails
 *   with ESRCH). Files of a live process (another backpass writing there now) are left alone; a
 *   reused pid only delays the removal to a later run. The names are backpass's own, so no user
 *   file is ever removed.
 *
 * - A folder the writer created stays only if a file was written into it.
 *
 * File-system problems become a `FileError`: one line naming the path and the problem.
 */
import { mkdir, readdir, rename, rm, stat, access, writeFile } from "node:fs/promises";
import { constants, rmdirSync, unlinkSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { terminalText } from "./escape.js";

/** A file-system problem, shown as one line: `cannot <action> '<path>': <problem>`. */
export class FileError extends Error {
  override readonly name = "FileError";
  constructor(
    readonly action: string,
    readonly path: string,
    readonly problem: string,
  ) {
    super(`cannot ${action} '${terminalText(path)}': ${terminalText(problem)}`);
  }
}

const PROBLEMS: Readonly<Record<string, string>> = {
  ENOENT: "no such file or directory",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  ENOTDIR: "not a directory",
  EISDIR: "is a directory",
  EEXIST: "already exists",
  EROFS: "read-only file system",
  ENOSPC: "no space left on device",
  EDQUOT: "disk quota exceeded",
  ENAMETOOLONG: "name too long",
  ELOOP: "too many symbolic links",
  EMFILE: "too many open files",
  EBUSY: "busy",
  EIO: "input/output error",
  EXDEV: "on another file system",
};

/** What a Node file-system error means, in a few words. */
export function describeFsError(e: unknown): string {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code && PROBLEMS[code]) return PROBLEMS[code];
  return code ?? (e instanceof Error ? e.message : String(e));
}

/** Is `e` an error from the file system (it has an errno code such as ENOENT)? */
export function isFsError(e: unknown): e is NodeJS.ErrnoException {
  return e instanceof Error && typeof (e as NodeJS.ErrnoException).code === "string" && typeof (e as NodeJS.ErrnoException).syscall === "string";
}

/**
 * Checks, before any work, that `dir` is (or can be created as) a writable folder; `shown` is the
 * path as the user gave it. Creates nothing.
 */
export async function checkOutputDir(dir: string, shown: string): Promise<void> {
  let at = resolve(dir);
  let shownAt = shown;
  for (;;) {
    try {
      const s = await stat(at);
      const own = at === resolve(dir);
      if (!s.isDirectory()) throw new FileError("write to", shown, own ? "not a directory" : `'${shownAt}' is not a directory`);
      try {
        await access(at, constants.W_OK | constants.X_OK);
      } catch (e) {
        throw new FileError("write to", shown, own ? describeFsError(e) : `cannot create it in '${shownAt}': ${describeFsError(e)}`);
      }
      return;
    } catch (e) {
      if (e instanceof FileError) throw e;
      const code = (e as NodeJS.ErrnoException).code;
      // not there (or under a file): look at the folder it would be created in
      if ((code !== "ENOENT" && code !== "ENOTDIR") || dirname(at) === at) throw new FileError("write to", shown, describeFsError(e));
      at = dirname(at);
      shownAt = dirname(shownAt);
    }
  }
}

const TEMP = /^\.backpass-(\d+)-\d+\.tmp$/;

function processGone(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ESRCH";
  }
}

/** Removes the temporary files in `dir` left by backpass runs that no longer exist. */
export async function removeStaleTemps(dir: string): Promise<void> {
  for (const f of await readdir(dir).catch(() => [] as string[])) {
    const m = TEMP.exec(f);
    if (m && processGone(Number(m[1]))) await rm(join(dir, f), { force: true }).catch(() => undefined);
  }
}

/**
 * Writes files atomically (temporary name, then rename) and cleans up after itself; see the top
 * of this file. `shown(path)` is how a path is named in messages.
 */
export class OutputWriter {
  private readonly temps = new Set<string>();
  private readonly swept = new Set<string>();
  /** Folders this writer created (outermost first, per mkdir), and the folders it wrote a file into. */
  private readonly created: string[] = [];
  private readonly used = new Set<string>();
  private count = 0;
  private readonly onSignal = (signal: NodeJS.Signals) => {
    this.removeTempsNow();
    this.release();
    process.kill(process.pid, signal);
  };
  private listening = false;

  constructor(private readonly shown: (path: string) => string = (p) => p) {}

  /** Writes `text` to `path`, creating its folder if needed. */
  async write(path: string, text: string): Promise<void> {
    const dir = dirname(path);
    this.listen();
    if (!this.swept.has(dir)) {
      try {
        const first = await mkdir(dir, { recursive: true });
        // every folder from the first one created down to dir is new
        if (first !== undefined) for (let at = dir; ; at = dirname(at)) {
          this.created.push(at);
          if (at === first || at === dirname(at)) break;
        }
      } catch (e) {
        throw new FileError("create", this.shown(dir), describeFsError(e));
      }
      await removeStaleTemps(dir);
      this.swept.add(dir);
    }
    const tmp = join(dir, `.backpass-${process.pid}-${this.count++}.tmp`);
    this.temps.add(tmp);
    try {
      await writeFile(tmp, text);
      await rename(tmp, path);
      for (let at = dir; ; at = dirname(at)) {
        this.used.add(at);
        if (at === dirname(at)) break;
      }
    } catch (e) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw new FileError("write", this.shown(path), describeFsError(e));
    } finally {
      this.temps.delete(tmp);
    }
  }

  /** Removes `path`. */
  async remove(path: string): Promise<void> {
    try {
      await rm(path);
    } catch (e) {
      throw new FileError("remove", this.shown(path), describeFsError(e));
    }
  }

  /** Stops watching for signals and removes the folders it created but wrote nothing into; call when done writing. */
  release(): void {
    for (const dir of this.created.splice(0)) {
      if (this.used.has(dir)) continue;
      try {
        rmdirSync(dir); // only an empty folder: never anything a user put there
      } catch {
        // not empty, or gone: leave it
      }
    }
    if (!this.listening) return;
    process.off("SIGINT", this.onSignal);
    process.off("SIGTERM", this.onSignal);
    this.listening = false;
  }

  /** The temporary files on disk right now (for tests). */
  get pending(): readonly string[] {
    return [...this.temps];
  }

  /** Removes every temporary file of this writer, synchronously, so it is done before a signal is raised again. */
  removeTempsNow(): void {
    for (const t of this.temps)
      try {
        unlinkSync(t);
      } catch {
        // already renamed or never created
      }
    this.temps.clear();
  }

  private listen(): void {
    if (this.listening) return;
    process.once("SIGINT", this.onSignal);
    process.once("SIGTERM", this.onSignal);
    this.listening = true;
  }
}
