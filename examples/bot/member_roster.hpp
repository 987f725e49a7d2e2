// bot::member_roster: the gateway's bounded view of one guild's members.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace bot {

/// The gateway's view of one guild's members, from which it picks the authors of events: the first ones
/// are the busy members. At most `cap` ids; past it a new member replaces one of the quieter half, so the
/// busy members stay and memory stays bounded however many join.
/// Thread safety: none (the gateway's strand only).
class member_roster
{
public:
    explicit member_roster(std::size_t cap = 512) : cap_(std::max<std::size_t>(cap, 2)) {}

    /// Adds a member; `random` chooses the quiet member it replaces when the roster is full.
    void add(std::uint64_t id, std::uint64_t random)
    {
        if (ids_.size() < cap_) {
            ids_.push_back(id);
            return;
        }
        const std::size_t half = cap_ / 2;
        ids_[half + random % (cap_ - half)] = id;
    }
    /// A member, skewed towards the first ones (u uniform in [0, 1)). The roster must not be empty.
    std::uint64_t pick(double u) const
    {
        return ids_[std::min(ids_.size() - 1,
                             static_cast<std::size_t>(u * u * static_cast<double>(ids_.size())))];
    }
    std::size_t size() const noexcept { return ids_.size(); }
    std::size_t capacity() const noexcept { return cap_; }
    const std::vector<std::uint64_t>& ids() const noexcept { return ids_; }

private:
    std::size_t cap_;
    std::vector<std::uint64_t> ids_;
};

} // namespace bot
