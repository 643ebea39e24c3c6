// OCSF's container object, rendered once when a container view is made (views are shared between
// threads and never change once published, so nothing renders it lazily).
#pragma once

#include "palisade/model/container_view.h"

namespace palisade::ocsf {

// Renders view.json.
void render_container_json(ContainerView& view);

// Builds a view from the runtime's record: fills the pod fields from the kubelet's labels, the
// pod's labels from the pod sandbox's (the CRI plugin puts them on the sandbox container only),
// and the OCSF object.
ContainerRef make_container_view(ContainerView view, const ContainerView* sandbox = nullptr);

}  // namespace palisade::ocsf
