// The fault-injecting and power-loss VFSes: shims over the default VFS, registered with sqlite3_vfs_register.
#include "vfs.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <variant>
#include <vector>

namespace rel {
namespace {

/// A file of a shim VFS: our header, followed by the real VFS's file object.
struct shim_file
{
    sqlite3_file base;
    sqlite3_file* real;
    int flags;
    const char* path; // stable: SQLite keeps the name it passed to xOpen alive until xClose
    bool tracked;     // main database or WAL
};

sqlite3_vfs* real_vfs()
{
    static sqlite3_vfs* v = sqlite3_vfs_find(nullptr);
    return v;
}

// ---- hooks the two VFSes fill in --------------------------------------------------------------------------

struct hooks
{
    int (*on_write)(shim_file*, const void*, int, sqlite3_int64) = nullptr; // SQLITE_OK to pass through
    int (*on_sync)(shim_file*) = nullptr;
    void (*after_write)(shim_file*, const void*, int, sqlite3_int64) = nullptr;
    void (*after_sync)(shim_file*) = nullptr;
    void (*after_truncate)(shim_file*, sqlite3_int64) = nullptr;
    void (*on_open)(shim_file*) = nullptr;
    void (*on_delete)(const char*) = nullptr;
};

template <const hooks& H>
struct shim
{
    static shim_file* f(sqlite3_file* p) { return reinterpret_cast<shim_file*>(p); }

    static int x_close(sqlite3_file* p)
    {
        int rc = f(p)->real->pMethods ? f(p)->real->pMethods->xClose(f(p)->real) : SQLITE_OK;
        return rc;
    }
    static int x_read(sqlite3_file* p, void* b, int n, sqlite3_int64 o)
    {
        return f(p)->real->pMethods->xRead(f(p)->real, b, n, o);
    }
    static int x_write(sqlite3_file* p, const void* b, int n, sqlite3_int64 o)
    {
        auto* s = f(p);
        if (s->tracked && H.on_write)
            if (int rc = H.on_write(s, b, n, o); rc != SQLITE_OK)
                return rc;
        int rc = s->real->pMethods->xWrite(s->real, b, n, o);
        if (rc == SQLITE_OK && s->tracked && H.after_write)
            H.after_write(s, b, n, o);
        return rc;
    }
    static int x_truncate(sqlite3_file* p, sqlite3_int64 size)
    {
        auto* s = f(p);
        int rc = s->real->pMethods->xTruncate(s->real, size);
        if (rc == SQLITE_OK && s->tracked && H.after_truncate)
            H.after_truncate(s, size);
        return rc;
    }
    static int x_sync(sqlite3_file* p, int flags)
    {
        auto* s = f(p);
        if (s->tracked && H.on_sync)
            if (int rc = H.on_sync(s); rc != SQLITE_OK)
                return rc;
        int rc = s->real->pMethods->xSync(s->real, flags);
        if (rc == SQLITE_OK && s->tracked && H.after_sync)
            H.after_sync(s);
        return rc;
    }
    static int x_file_size(sqlite3_file* p, sqlite3_int64* size)
    {
        return f(p)->real->pMethods->xFileSize(f(p)->real, size);
    }
    static int x_lock(sqlite3_file* p, int l) { return f(p)->real->pMethods->xLock(f(p)->real, l); }
    static int x_unlock(sqlite3_file* p, int l) { return f(p)->real->pMethods->xUnlock(f(p)->real, l); }
    static int x_check_reserved_lock(sqlite3_file* p, int* out)
    {
        return f(p)->real->pMethods->xCheckReservedLock(f(p)->real, out);
    }
    static int x_file_control(sqlite3_file* p, int op, void* arg)
    {
        return f(p)->real->pMethods->xFileControl(f(p)->real, op, arg);
    }
    static int x_sector_size(sqlite3_file* p) { return f(p)->real->pMethods->xSectorSize(f(p)->real); }
    static int x_device_characteristics(sqlite3_file* p)
    {
        return f(p)->real->pMethods->xDeviceCharacteristics(f(p)->real);
    }
    static int x_shm_map(sqlite3_file* p, int pg, int sz, int extend, void volatile** out)
    {
        return f(p)->real->pMethods->xShmMap(f(p)->real, pg, sz, extend, out);
    }
    static int x_shm_lock(sqlite3_file* p, int off, int n, int flags)
    {
        return f(p)->real->pMethods->xShmLock(f(p)->real, off, n, flags);
    }
    static void x_shm_barrier(sqlite3_file* p) { f(p)->real->pMethods->xShmBarrier(f(p)->real); }
    static int x_shm_unmap(sqlite3_file* p, int del)
    {
        return f(p)->real->pMethods->xShmUnmap(f(p)->real, del);
    }
    // No memory-mapped I/O: every write must go through x_write to be seen.
    static int x_fetch(sqlite3_file*, sqlite3_int64, int, void** pp)
    {
        *pp = nullptr;
        return SQLITE_OK;
    }
    static int x_unfetch(sqlite3_file*, sqlite3_int64, void*) { return SQLITE_OK; }

    static inline const sqlite3_io_methods methods = {
        3,
        x_close,
        x_read,
        x_write,
        x_truncate,
        x_sync,
        x_file_size,
        x_lock,
        x_unlock,
        x_check_reserved_lock,
        x_file_control,
        x_sector_size,
        x_device_characteristics,
        x_shm_map,
        x_shm_lock,
        x_shm_barrier,
        x_shm_unmap,
        x_fetch,
        x_unfetch,
    };

    static int x_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* p, int flags, int* out_flags)
    {
        auto* s = f(p);
        s->real = reinterpret_cast<sqlite3_file*>(s + 1);
        s->flags = flags;
        s->path = name;
        s->tracked = name && (flags & (SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_WAL)) != 0;
        s->base.pMethods = nullptr;
        int rc = real_vfs()->xOpen(real_vfs(), name, s->real, flags, out_flags);
        if (rc == SQLITE_OK) {
            s->base.pMethods = &methods;
            if (s->tracked && H.on_open)
                H.on_open(s);
        }
        return rc;
    }
    static int x_delete(sqlite3_vfs*, const char* name, int sync_dir)
    {
        int rc = real_vfs()->xDelete(real_vfs(), name, sync_dir);
        if (rc == SQLITE_OK && H.on_delete)
            H.on_delete(name);
        return rc;
    }
    static int x_access(sqlite3_vfs*, const char* name, int flags, int* out)
    {
        return real_vfs()->xAccess(real_vfs(), name, flags, out);
    }
    static int x_full_pathname(sqlite3_vfs*, const char* name, int n, char* out)
    {
        return real_vfs()->xFullPathname(real_vfs(), name, n, out);
    }
    static void* x_dl_open(sqlite3_vfs*, const char* n) { return real_vfs()->xDlOpen(real_vfs(), n); }
    static void x_dl_error(sqlite3_vfs*, int n, char* out) { real_vfs()->xDlError(real_vfs(), n, out); }
    static void (*x_dl_sym(sqlite3_vfs*, void* h, const char* s))(void)
    {
        return real_vfs()->xDlSym(real_vfs(), h, s);
    }
    static void x_dl_close(sqlite3_vfs*, void* h) { real_vfs()->xDlClose(real_vfs(), h); }
    static int x_randomness(sqlite3_vfs*, int n, char* out)
    {
        return real_vfs()->xRandomness(real_vfs(), n, out);
    }
    static int x_sleep(sqlite3_vfs*, int us) { return real_vfs()->xSleep(real_vfs(), us); }
    static int x_current_time(sqlite3_vfs*, double* t) { return real_vfs()->xCurrentTime(real_vfs(), t); }
    static int x_get_last_error(sqlite3_vfs*, int n, char* out)
    {
        return real_vfs()->xGetLastError ? real_vfs()->xGetLastError(real_vfs(), n, out) : 0;
    }
    static int x_current_time_int64(sqlite3_vfs*, sqlite3_int64* t)
    {
        return real_vfs()->xCurrentTimeInt64(real_vfs(), t);
    }

    static void install(const char* name)
    {
        static std::once_flag once;
        std::call_once(once, [name] {
            static sqlite3_vfs v{};
            sqlite3_vfs* r = real_vfs();
            v.iVersion = 2;
            v.szOsFile = static_cast<int>(sizeof(shim_file)) + r->szOsFile;
            v.mxPathname = r->mxPathname;
            v.zName = name;
            v.xOpen = x_open;
            v.xDelete = x_delete;
            v.xAccess = x_access;
            v.xFullPathname = x_full_pathname;
            v.xDlOpen = x_dl_open;
            v.xDlError = x_dl_error;
            v.xDlSym = x_dl_sym;
            v.xDlClose = x_dl_close;
            v.xRandomness = x_randomness;
            v.xSleep = x_sleep;
            v.xCurrentTime = x_current_time;
            v.xGetLastError = x_get_last_error;
            v.xCurrentTimeInt64 = x_current_time_int64;
            sqlite3_vfs_register(&v, 0);
        });
    }
};

// ---- fault ------------------------------------------------------------------------------------------------

struct fault_state
{
    std::atomic<int> armed_kind{-1};
    std::atomic<long> target{0};
    std::atomic<bool> sticky{false};
    std::atomic<long> writes{0}, syncs{0}, injected{0};
} fault;

int fault_on_write(shim_file*, const void*, int, sqlite3_int64)
{
    const long n = fault.writes.fetch_add(1) + 1;
    const int k = fault.armed_kind.load();
    if (k == static_cast<int>(fault_vfs::kind::write) || k == static_cast<int>(fault_vfs::kind::full)) {
        const long t = fault.target.load();
        if (n == t || (fault.sticky.load() && n > t)) {
            fault.injected.fetch_add(1);
            return k == static_cast<int>(fault_vfs::kind::full) ? SQLITE_FULL : SQLITE_IOERR_WRITE;
        }
    }
    return SQLITE_OK;
}

int fault_on_sync(shim_file*)
{
    const long n = fault.syncs.fetch_add(1) + 1;
    if (fault.armed_kind.load() == static_cast<int>(fault_vfs::kind::sync)) {
        const long t = fault.target.load();
        if (n == t || (fault.sticky.load() && n > t)) {
            fault.injected.fetch_add(1);
            return SQLITE_IOERR_FSYNC;
        }
    }
    return SQLITE_OK;
}

constexpr hooks fault_hooks{fault_on_write, fault_on_sync, nullptr, nullptr, nullptr, nullptr, nullptr};

// ---- crash ------------------------------------------------------------------------------------------------

struct pending_op
{
    sqlite3_int64 offset; // a write at offset, or a truncate to offset when data is empty and truncate set
    std::string data;
    bool truncate = false;
};

struct tracked_file
{
    bool existed = false;
    std::string durable;
    std::vector<pending_op> pending;
};

struct crash_state
{
    std::mutex m;
    std::map<std::string, tracked_file> files;
    std::atomic<bool> off{false};
} crash;

void apply(std::string& img, const pending_op& op)
{
    if (op.truncate) {
        img.resize(static_cast<std::size_t>(op.offset));
        return;
    }
    const auto end = static_cast<std::size_t>(op.offset) + op.data.size();
    if (img.size() < end)
        img.resize(end, '\0');
    std::memcpy(img.data() + op.offset, op.data.data(), op.data.size());
}

std::string read_real(const char* path)
{
    std::ifstream in(path, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void crash_on_open(shim_file* s)
{
    if (crash.off.load())
        return;
    std::lock_guard lock(crash.m);
    auto& t = crash.files[s->path];
    if (!t.existed) {
        t.existed = true;
        t.durable = read_real(s->path); // what was there before we saw it is durable
        t.pending.clear();
    }
}

void crash_after_write(shim_file* s, const void* b, int n, sqlite3_int64 o)
{
    if (crash.off.load())
        return;
    std::lock_guard lock(crash.m);
    crash.files[s->path].pending.push_back(
        {o, std::string(static_cast<const char*>(b), static_cast<std::size_t>(n))});
}

void crash_after_truncate(shim_file* s, sqlite3_int64 size)
{
    if (crash.off.load())
        return;
    std::lock_guard lock(crash.m);
    crash.files[s->path].pending.push_back({size, {}, true});
}

void crash_after_sync(shim_file* s)
{
    if (crash.off.load())
        return;
    std::lock_guard lock(crash.m);
    auto& t = crash.files[s->path];
    for (const auto& op : t.pending)
        apply(t.durable, op);
    t.pending.clear();
}

void crash_on_delete(const char* path)
{
    if (crash.off.load())
        return;
    std::lock_guard lock(crash.m);
    // Treated as durable at once (a stricter model would wait for the directory's sync).
    auto it = crash.files.find(path);
    if (it != crash.files.end()) {
        it->second.existed = false;
        it->second.durable.clear();
        it->second.pending.clear();
    }
}

constexpr hooks crash_hooks{nullptr,
                            nullptr,
                            crash_after_write,
                            crash_after_sync,
                            crash_after_truncate,
                            crash_on_open,
                            crash_on_delete};

} // namespace

namespace fault_vfs {
void install()
{
    shim<fault_hooks>::install(name);
}
void arm(kind k, long n, bool sticky)
{
    fault.armed_kind.store(-1);
    fault.writes.store(0);
    fault.syncs.store(0);
    fault.injected.store(0);
    fault.target.store(n);
    fault.sticky.store(sticky);
    fault.armed_kind.store(static_cast<int>(k));
}
void disarm()
{
    fault.armed_kind.store(-1);
}
long seen(kind k)
{
    return k == kind::sync ? fault.syncs.load() : fault.writes.load();
}
long injected()
{
    return fault.injected.load();
}
void count_from_now()
{
    fault.writes.store(0);
    fault.syncs.store(0);
    fault.injected.store(0);
}
} // namespace fault_vfs

namespace crash_vfs {
void install()
{
    shim<crash_hooks>::install(name);
}
void reset()
{
    std::lock_guard lock(crash.m);
    crash.files.clear();
    crash.off.store(false);
}
void power_off()
{
    crash.off.store(true);
}
image after_power_loss(const std::string& path, double keep, std::mt19937_64& r)
{
    std::lock_guard lock(crash.m);
    image img;
    auto it = crash.files.find(path);
    if (it == crash.files.end() || !it->second.existed)
        return img;
    img.existed = true;
    img.bytes = it->second.durable;
    std::bernoulli_distribution coin(keep);
    for (const auto& op : it->second.pending) {
        ++img.unsynced_ops;
        if (op.truncate) {
            if (coin(r)) {
                apply(img.bytes, op);
                ++img.unsynced_kept;
            }
            else {
                ++img.unsynced_dropped;
            }
            continue;
        }
        // A write reaches the disk in 512-byte sectors, each independently (a torn write).
        bool any = false, all = true;
        for (std::size_t at = 0; at < op.data.size(); at += 512) {
            if (!coin(r)) {
                all = false;
                continue;
            }
            any = true;
            apply(img.bytes, {op.offset + static_cast<sqlite3_int64>(at), op.data.substr(at, 512)});
        }
        img.unsynced_kept += any;
        img.unsynced_dropped += !all;
    }
    return img;
}
} // namespace crash_vfs

} // namespace rel
