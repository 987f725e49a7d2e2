#include <dbactor/detail/change_log.hpp>

#include <sqlite3.h>

#include <algorithm>
#include <cstring>

namespace dbactor::detail {
namespace {

void add_rowid(table_change& t, std::int64_t rowid, std::size_t max_rowids)
{
    if (std::find(t.rowids.begin(), t.rowids.end(), rowid) != t.rowids.end())
        return;
    if (t.rowids.size() < max_rowids)
        t.rowids.push_back(rowid);
    else
        t.rowids_complete = false;
}

table_change& table_of(std::vector<table_change>& tables, const char* name, std::size_t len)
{
    // Few tables per transaction, and the last one is usually the next one: a backwards scan.
    for (auto it = tables.rbegin(); it != tables.rend(); ++it)
        if (it->table.size() == len && std::memcmp(it->table.data(), name, len) == 0)
            return *it;
    tables.push_back(table_change{std::string(name, len)});
    return tables.back();
}

} // namespace

void change_set::add(
    int op, const char* table, std::int64_t rowid, std::int64_t new_rowid, std::size_t max_rowids)
{
    table_change& t = table_of(tables, table, std::strlen(table));
    switch (op) {
    case SQLITE_INSERT: ++t.inserts; break;
    case SQLITE_UPDATE: ++t.updates; break;
    default: ++t.deletes; break;
    }
    add_rowid(t, rowid, max_rowids);
    if (new_rowid != rowid)
        add_rowid(t, new_rowid, max_rowids);
}

void merge_change(table_change& into, const table_change& from, std::size_t max_rowids)
{
    into.inserts += from.inserts;
    into.updates += from.updates;
    into.deletes += from.deletes;
    into.rowids_complete = into.rowids_complete && from.rowids_complete;
    for (const auto id : from.rowids)
        add_rowid(into, id, max_rowids);
}

void change_set::merge(const change_set& other, std::size_t max_rowids)
{
    for (const auto& t : other.tables)
        merge_change(table_of(tables, t.table.data(), t.table.size()), t, max_rowids);
}

void change_log::on_update(int op, const char* table, std::int64_t rowid, std::int64_t new_rowid)
{
    if (active)
        levels_[depth_].add(op, table, rowid, new_rowid, max_rowids);
}

void change_log::push_level()
{
    if (++depth_ == levels_.size())
        levels_.emplace_back();
    levels_[depth_].clear();
}

void change_log::release_level()
{
    if (depth_ == 0) // the transaction ended meanwhile (its commit or rollback reset the levels)
        return;
    levels_[depth_ - 1].merge(levels_[depth_], max_rowids);
    levels_[depth_--].clear();
}

void change_log::rollback_level() noexcept
{
    if (depth_ > 0)
        levels_[depth_].clear();
}

void change_log::on_commit()
{
    for (std::size_t i = 0; i <= depth_; ++i) {
        tentative_.merge(levels_[i], max_rowids);
        levels_[i].clear();
    }
    depth_ = 0;
}

void change_log::on_wal_commit()
{
    committed_.merge(tentative_, max_rowids);
    tentative_.clear();
}

void change_log::on_rollback() noexcept
{
    for (std::size_t i = 0; i <= depth_; ++i)
        levels_[i].clear();
    depth_ = 0;
    tentative_.clear();
}

bool change_log::take(change_set& out)
{
    if (committed_.empty())
        return false;
    out.tables.swap(committed_.tables);
    committed_.clear();
    return true;
}

} // namespace dbactor::detail
