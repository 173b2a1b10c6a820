//! The DNS proxy (port 15053): answers mesh names from the name table discovery pushes
//! (NDS) and forwards everything else. PLACEHOLDER — the local-mesh work fills it in.
